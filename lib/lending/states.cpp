// The transition table and its one checking function.
#include "dis/lending_states.hpp"

#include <array>

namespace dis::lending {

namespace {

using S = State;
using E = Event;
using G = Guard;

// Every legal transition. Anything not here is refused.
constexpr std::array k_table = {
    Transition{S::removed, E::add, S::unavailable, G::none},
    Transition{S::unavailable, E::make_available, S::available, G::none},
    Transition{S::available, E::make_unavailable, S::unavailable, G::none},
    Transition{S::available, E::borrow, S::borrowed, G::none},
    Transition{S::borrowed, E::borrow, S::borrowed, G::shareable},
    Transition{S::borrowed, E::release, S::borrowed, G::others_remain},
    Transition{S::borrowed, E::release, S::returning, G::last_borrower},
    Transition{S::borrowed, E::expire, S::borrowed, G::others_remain},
    Transition{S::borrowed, E::expire, S::returning, G::last_borrower},
    Transition{S::borrowed, E::lease_lost, S::borrowed, G::others_remain},
    Transition{S::borrowed, E::lease_lost, S::returning, G::last_borrower},
    Transition{S::borrowed, E::reclaim, S::returning, G::none},
    Transition{S::returning, E::quiesced, S::resetting, G::reset_wanted},
    Transition{S::returning, E::quiesced, S::available, G::no_reset_wanted},
    Transition{S::resetting, E::reset_ok, S::available, G::none},
    Transition{S::resetting, E::reset_failed, S::failed, G::none},
    Transition{S::resetting, E::reset_timeout, S::failed, G::none},
    Transition{S::resetting, E::reset_restart, S::resetting, G::none},
    Transition{S::available, E::reset, S::resetting, G::none},
    Transition{S::failed, E::reset, S::resetting, G::none},
    Transition{S::available, E::fault, S::failed, G::none},
    Transition{S::borrowed, E::fault, S::failed, G::none},
    Transition{S::returning, E::fault, S::failed, G::none},
    Transition{S::unavailable, E::remove, S::removed, G::none},
    Transition{S::available, E::remove, S::removed, G::none},
    Transition{S::failed, E::remove, S::removed, G::none},
};

bool holds(Guard guard, const GuardFacts& f) {
    switch (guard) {
    case G::none:
        return true;
    case G::shareable:
        return f.shareable;
    case G::others_remain:
        return f.leases_after > 0;
    case G::last_borrower:
        return f.leases_after == 0;
    case G::reset_wanted:
        return f.reset_wanted;
    case G::no_reset_wanted:
        return !f.reset_wanted;
    }
    return false;
}

std::string describe(Fdid fdid, State state, std::string_view holder) {
    std::string s = "fdid " + to_string(fdid) + " is " + to_string(state);
    if (!holder.empty())
        s += " (" + std::string(holder) + ")";
    return s;
}

} // namespace

LendingError::LendingError(ErrorKind kind, Refusal refusal, Fdid fdid, std::optional<State> state,
                           std::string why, std::string_view holder)
    : Error(kind,
            (state ? describe(fdid, *state, holder) : "fdid " + to_string(fdid)) + ": " + why),
      m_refusal(refusal), m_fdid(fdid), m_state(state), m_why(std::move(why)) {}

std::span<const Transition> transition_table() {
    return k_table;
}

const Transition& check_transition(Fdid fdid, State from, Event event, const GuardFacts& facts,
                                   std::string_view holder) {
    bool any = false;
    const Transition* failed_guard = nullptr;
    for (const auto& t : k_table) {
        if (t.from != from || t.event != event)
            continue;
        any = true;
        if (holds(t.guard, facts))
            return t;
        failed_guard = &t;
    }
    // In a passing state (in use, returning, resetting) a refusal means "busy, try later".
    bool transient = from == S::borrowed || from == S::returning || from == S::resetting;
    if (!any)
        throw LendingError(transient ? ErrorKind::busy : ErrorKind::invalid_input,
                           Refusal::illegal_transition, fdid, from,
                           "'" + std::string(to_string(event)) + "' is not allowed in state " +
                               to_string(from),
                           holder);
    std::string why = event == Event::borrow ? "busy" : "guard failed";
    throw LendingError(ErrorKind::busy, Refusal::guard_failed, fdid, from,
                       "'" + std::string(to_string(event)) + "' refused: " + why + " (" +
                           to_string(failed_guard->guard) + " does not hold)",
                       holder);
}

const char* to_string(State state) noexcept {
    switch (state) {
    case S::unavailable:
        return "unavailable";
    case S::available:
        return "available";
    case S::borrowed:
        return "borrowed";
    case S::returning:
        return "returning";
    case S::resetting:
        return "resetting";
    case S::failed:
        return "failed";
    case S::removed:
        return "removed";
    }
    return "?";
}

const char* to_string(Event event) noexcept {
    switch (event) {
    case E::add:
        return "add";
    case E::make_available:
        return "make_available";
    case E::make_unavailable:
        return "make_unavailable";
    case E::borrow:
        return "borrow";
    case E::release:
        return "release";
    case E::expire:
        return "expire";
    case E::lease_lost:
        return "lease_lost";
    case E::reclaim:
        return "reclaim";
    case E::quiesced:
        return "quiesced";
    case E::reset_ok:
        return "reset_ok";
    case E::reset_failed:
        return "reset_failed";
    case E::reset_timeout:
        return "reset_timeout";
    case E::reset_restart:
        return "reset_restart";
    case E::reset:
        return "reset";
    case E::fault:
        return "fault";
    case E::remove:
        return "remove";
    case E::note:
        return "note";
    }
    return "?";
}

const char* to_string(Guard guard) noexcept {
    switch (guard) {
    case G::none:
        return "none";
    case G::shareable:
        return "shareable";
    case G::others_remain:
        return "others_remain";
    case G::last_borrower:
        return "last_borrower";
    case G::reset_wanted:
        return "reset_wanted";
    case G::no_reset_wanted:
        return "no_reset_wanted";
    }
    return "?";
}

std::optional<State> parse_state(std::string_view text) noexcept {
    for (State s : k_all_states)
        if (text == to_string(s))
            return s;
    return std::nullopt;
}

std::optional<Event> parse_event(std::string_view text) noexcept {
    for (Event e : k_all_events)
        if (text == to_string(e))
            return e;
    if (text == to_string(Event::note))
        return Event::note;
    return std::nullopt;
}

} // namespace dis::lending
