// The device pool's state machine as data: one table of {from, event, to, guard}. The pool
// changes a device's state only through check_transition(), so the table is the whole truth.
#pragma once

#include "dis/error.hpp"
#include "dis/lending_fdid.hpp"

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace dis::lending {

enum class State {
    unavailable, // the lender uses the device itself
    available,   // lendable, nobody holds it
    borrowed,    // held by one exclusive lease or by N shared leases
    returning,   // the last lease is gone; the borrower's mappings and DMA are being quiesced
    resetting,   // being reset before it is lent again
    failed,      // quarantined: a failed or timed-out reset, or it stopped responding
    removed,     // gone from the pool (also the state of an fdid the pool has never seen)
};

enum class Event {
    add,              // register a device (removed -> unavailable)
    make_available,   // the lender offers it
    make_unavailable, // the lender takes it back for itself
    borrow,           // a lease is granted
    release,          // a borrower returns its lease
    expire,           // a lease's TTL ran out
    lease_lost,       // a restarted lender could not confirm a lease
    reclaim,          // forced: every lease is dropped
    quiesced,         // the borrowers' mappings and DMA are gone
    reset_ok,         // the reset succeeded
    reset_failed,     // the reset reported failure
    reset_timeout,    // the reset did not finish in time
    reset_restart,    // a reset interrupted by a lender restart is started again
    reset,            // an admin asks for a reset (this is how a quarantine is cleared)
    fault,            // the device stopped responding
    remove,           // the device leaves the pool
    // Not a transition (no row in the table, not in k_all_events): an audit row written by
    // Pool::note, e.g. one step of `dis-tool device lend` on the lender's host (from = to).
    note,
};

enum class Guard {
    none,
    shareable,       // the request and every current lease are shared
    others_remain,   // other leases remain after this one goes
    last_borrower,   // this was the last lease
    reset_wanted,    // a lease since the last reset asked for reset on release
    no_reset_wanted, // no lease since the last reset asked for one
};

struct Transition {
    State from;
    Event event;
    State to;
    Guard guard;
};

// Facts the guards are evaluated on, gathered by the pool inside the transaction.
struct GuardFacts {
    bool shareable = false;
    std::size_t leases_after = 0; // leases left once the event's lease is gone
    bool reset_wanted = true;
};

enum class Refusal {
    no_such_device,     // the fdid is not in the pool
    no_such_lease,      // the lease id is unknown (expired, released or never granted)
    illegal_transition, // the table has no row for (state, event)
    guard_failed,       // rows exist but no guard holds (a busy device, say)
    policy,             // a policy rule refused the borrow
    invalid_request,    // the request itself is malformed
    wait_ended,         // a wait ticket expired or was cancelled
};

// A refused pool operation. Its message names the fdid, the state and why, e.g.
// "fdid 0x80000 is borrowed (exclusively by node 8 pid 1234 uid 1000 since ...): busy".
class LendingError : public Error {
public:
    LendingError(ErrorKind kind, Refusal refusal, Fdid fdid, std::optional<State> state,
                 std::string why, std::string_view holder = {});
    Refusal refusal() const noexcept { return m_refusal; }
    Fdid fdid() const noexcept { return m_fdid; }
    std::optional<State> state() const noexcept { return m_state; }
    const std::string& why() const noexcept { return m_why; }

private:
    Refusal m_refusal;
    Fdid m_fdid;
    std::optional<State> m_state;
    std::string m_why;
};

std::span<const Transition> transition_table();

// The row for (state, event) whose guard holds, or a LendingError: illegal_transition when the
// table has no row for the pair, guard_failed (kind busy) when rows exist but no guard holds.
// `holder` describes the current leases for the message ("exclusively by node 8 pid ...").
const Transition& check_transition(Fdid fdid, State from, Event event, const GuardFacts& facts,
                                   std::string_view holder = {});

const char* to_string(State state) noexcept;
const char* to_string(Event event) noexcept;
const char* to_string(Guard guard) noexcept;
std::optional<State> parse_state(std::string_view text) noexcept;
std::optional<Event> parse_event(std::string_view text) noexcept;

inline constexpr State k_all_states[] = {State::unavailable, State::available, State::borrowed,
                                         State::returning,   State::resetting, State::failed,
                                         State::removed};
inline constexpr Event k_all_events[] = {
    Event::add,           Event::make_available, Event::make_unavailable,
    Event::borrow,        Event::release,        Event::expire,
    Event::lease_lost,    Event::reclaim,        Event::quiesced,
    Event::reset_ok,      Event::reset_failed,   Event::reset_timeout,
    Event::reset_restart, Event::reset,          Event::fault,
    Event::remove};

} // namespace dis::lending
