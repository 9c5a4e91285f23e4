// `dis-tool exporter`: the lib/metrics collectors served over HTTP for Prometheus
// (dis-tool-exporter(1)). A civetweb server: a begin_request callback checks basic auth on
// every path first and serves the landing page; /metrics has its handler below.
// prometheus-cpp's own Exposer is not used: its handler writes the text a character at a time
// and gzips at zlib's default level, 40 ms of a 1,000-device scrape after the collection
// (dis/metrics_exposition.hpp takes 10).
#include "cli.hpp"

#include "dis/error.hpp"
#include "dis/fabric_admin.hpp"
#include "dis/metrics.hpp"
#include "dis/metrics_exposition.hpp"
#include "dis/unique_fd.hpp"

#include <CivetServer.h>
#include <civetweb.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <set>

namespace dis::cli {

namespace {

struct ExporterOptions {
    std::string listen = "127.0.0.1:9466";
    std::string basic_auth;
    std::string fabric;
    int fabric_timeout_ms = 1000;
    PciSourceOptions pci;
};

struct ListenAddress {
    std::string host;
    int port = 0;
};

// IPv4 "HOST:PORT" only: Debian's civetweb has no IPv6 and crashes on its TLS ("443s").
ListenAddress parse_listen(const std::string& text) {
    auto fail = [&](const std::string& why) {
        throw Error(ErrorKind::invalid_input, "--listen " + text + ": " + why);
    };
    if (!text.empty() && text.front() == '[')
        fail("IPv6 is not supported (Debian's civetweb has none); use an IPv4 address");
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
        fail("expected HOST:PORT, e.g. 127.0.0.1:9466");
    ListenAddress a{text.substr(0, colon), 0};
    const std::string port = text.substr(colon + 1);
    if (a.host.find(':') != std::string::npos)
        fail("IPv6 is not supported (Debian's civetweb has none); use an IPv4 address");
    if (!port.empty() && port.back() == 's')
        fail("no built-in TLS; put a reverse proxy in front (dis-tool-exporter(1))");
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != port.npos ||
        std::stoi(port) > 65535)
        fail("the port must be a number from 0 to 65535");
    a.port = std::stoi(port);
    if (a.host == "localhost")
        a.host = "127.0.0.1";
    in_addr addr{};
    if (::inet_pton(AF_INET, a.host.c_str(), &addr) != 1)
        fail("'" + a.host + "' is not an IPv4 address");
    return a;
}

// Binds the address once ourselves so that a busy or foreign address is one clear error
// (civetweb would only say "null context"); port 0 picks a free port here.
int check_bindable(const ListenAddress& a) {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid())
        throw Error(ErrorKind::os, std::string("socket: ") + std::strerror(errno));
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<std::uint16_t>(a.port));
    ::inet_pton(AF_INET, a.host.c_str(), &sa.sin_addr);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
        const int e = errno;
        const std::string where = "cannot listen on " + a.host + ":" + std::to_string(a.port);
        throw Error(e == EACCES ? ErrorKind::permission : ErrorKind::os,
                    where + ": " + std::strerror(e));
    }
    socklen_t len = sizeof sa;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len);
    return ntohs(sa.sin_port);
}

// "user:password" lines; blank lines and lines starting with '#' are ignored.
std::set<std::string> read_credentials(const std::string& path) {
    std::ifstream in(path);
    if (!in)
        throw Error(ErrorKind::not_found, "--basic-auth " + path + ": cannot read the file");
    std::set<std::string> creds;
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        if (line.empty() || line.front() == '#')
            continue;
        auto colon = line.find(':');
        if (colon == 0 || colon == std::string::npos || colon + 1 == line.size())
            throw Error(ErrorKind::invalid_input, "--basic-auth " + path + ":" + std::to_string(n) +
                                                      ": expected user:password");
        creds.insert(line);
    }
    if (creds.empty())
        throw Error(ErrorKind::invalid_input, "--basic-auth " + path + ": no user:password line");
    return creds;
}

std::string base64_decode(const std::string& in) {
    static const std::string k_chars =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    unsigned value = 0;
    int bits = -8;
    for (char c : in) {
        if (c == '=')
            break;
        auto pos = k_chars.find(c);
        if (pos == std::string::npos)
            return {};
        value = (value << 6) | static_cast<unsigned>(pos);
        bits += 6;
        if (bits >= 0) {
            out.push_back(static_cast<char>((value >> bits) & 0xff));
            bits -= 8;
        }
    }
    return out;
}

// The one exporter of this process, read by the C callback below.
const std::set<std::string>* g_credentials = nullptr;

constexpr const char* k_landing =
    "<html><head><title>dis-tool exporter</title></head><body><h1>dis-tool exporter</h1>"
    "<p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

int begin_request(mg_connection* conn) {
    const mg_request_info* ri = mg_get_request_info(conn);
    const std::string uri = ri->local_uri != nullptr ? ri->local_uri : "";
    if (g_credentials != nullptr) {
        const char* header = mg_get_header(conn, "Authorization");
        std::string h = header != nullptr ? header : "";
        bool ok = h.rfind("Basic ", 0) == 0 && g_credentials->count(base64_decode(h.substr(6)));
        if (!ok) {
            const char* body = "401 Unauthorized\n";
            mg_printf(conn,
                      "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"dis-tool "
                      "exporter\"\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%s",
                      std::strlen(body), body);
            return 401;
        }
    }
    if (uri == "/") {
        mg_printf(conn,
                  "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                  std::strlen(k_landing), k_landing);
        return 200;
    }
    return 0; // /metrics: MetricsHandler; anything else: civetweb's 404
}

// One scrape per request: the sources collected, the text written, gzipped when the scraper
// accepts it. HEAD gets the headers of the same reply.
class MetricsHandler : public CivetHandler {
public:
    explicit MetricsHandler(std::shared_ptr<metrics::Exporter> exporter)
        : m_exporter(std::move(exporter)) {}
    bool handleGet(CivetServer*, mg_connection* conn) override { return reply(conn, true); }
    bool handleHead(CivetServer*, mg_connection* conn) override { return reply(conn, false); }
    // civetweb would answer these 404.
    bool handlePost(CivetServer*, mg_connection* conn) override { return not_allowed(conn); }
    bool handlePut(CivetServer*, mg_connection* conn) override { return not_allowed(conn); }
    bool handlePatch(CivetServer*, mg_connection* conn) override { return not_allowed(conn); }

private:
    static bool not_allowed(mg_connection* conn) {
        const char* text = "405 Method Not Allowed: /metrics takes GET and HEAD\n";
        mg_printf(conn,
                  "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
                  "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n%s",
                  std::strlen(text), text);
        return true;
    }

    bool reply(mg_connection* conn, bool with_body) const {
        const char* accept = mg_get_header(conn, "Accept-Encoding");
        const bool gzip = accept != nullptr && metrics::accepts_gzip(accept);
        std::string body;
        try {
            body = metrics::render_text(m_exporter->Collect());
            if (gzip)
                body = metrics::gzip_compress(body);
        } catch (const std::exception& e) {
            const std::string text =
                std::string("500 cannot render the scrape: ") + e.what() + "\n";
            mg_printf(conn,
                      "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      text.size());
            mg_write(conn, text.data(), text.size());
            return true;
        }
        mg_printf(conn,
                  "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n%sVary: Accept-Encoding\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  metrics::k_text_content_type, gzip ? "Content-Encoding: gzip\r\n" : "",
                  body.size());
        if (with_body)
            mg_write(conn, body.data(), body.size());
        return true;
    }

    std::shared_ptr<metrics::Exporter> m_exporter;
};

void run_exporter(const ExporterOptions& o) {
    const auto address = parse_listen(o.listen);
    std::set<std::string> creds;
    if (!o.basic_auth.empty())
        creds = read_credentials(o.basic_auth);

    // A --sysfs-root or --dump that cannot be read is a usage error now, not a pci collector
    // failing on every scrape. The live /sys is not checked: a host without PCI still serves
    // its fabric series.
    if (!o.pci.dump.empty() || !o.pci.sysfs_root.empty())
        (void)pci::scan(o.pci.source(), pci::ScanOptions{.placement = false, .names = false});

    std::vector<std::shared_ptr<metrics::SourceCollector>> sources;
    sources.push_back(metrics::make_pci_collector(o.pci.source(), std::chrono::milliseconds(2000)));
    std::optional<std::string> fabric_dir;
    try {
        fabric_dir =
            fabric::resolve_fabric_dir(o.fabric.empty() ? std::nullopt : std::optional(o.fabric));
    } catch (const Error&) {
        if (!o.fabric.empty())
            throw;
        // No fabric directory configured: the fabric series are left out.
    }
    if (fabric_dir) {
        sources.push_back(metrics::make_fabric_collector(
            *fabric_dir, std::chrono::milliseconds(o.fabric_timeout_ms)));
        sources.push_back(metrics::make_lending_collector(
            *fabric_dir, std::chrono::milliseconds(o.fabric_timeout_ms)));
    }
    auto exporter = std::make_shared<metrics::Exporter>(std::move(sources));

    const int port = check_bindable(address);
    const std::string bind = address.host + ":" + std::to_string(port);

    // Civetweb's threads inherit this mask, so SIGTERM/SIGINT reach only sigwait below.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    if (!creds.empty())
        g_credentials = &creds;
    CivetCallbacks callbacks;
    callbacks.begin_request = &begin_request;
    MetricsHandler metrics_handler(exporter);
    std::unique_ptr<CivetServer> server;
    try {
        server = std::make_unique<CivetServer>(
            std::vector<std::string>{"listening_ports", bind, "num_threads", "4"}, &callbacks);
    } catch (const std::exception& e) {
        throw Error(ErrorKind::os, "cannot listen on " + bind + ": " + e.what());
    }
    // "$": /metrics itself, not /metrics/anything.
    server->addHandler("/metrics$", metrics_handler);
    std::cerr << "dis-tool: exporter listening on http://" << bind << "/metrics" << std::endl;
    int sig = 0;
    sigwait(&stop, &sig);
    server.reset(); // stops the threads that use the handler and the credentials
    g_credentials = nullptr;
}

} // namespace

void register_exporter_commands(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<ExporterOptions>();
    auto* cmd =
        app.add_subcommand("exporter", "Serve PCIe, fabric and lending metrics for Prometheus");
    cmd->add_option("--listen", opts->listen, "IPv4 HOST:PORT to serve on (port 0 picks one)")
        ->type_name("HOST:PORT")
        ->default_str("127.0.0.1:9466");
    cmd->add_option("--basic-auth", opts->basic_auth,
                    "Require HTTP basic auth on every path; FILE holds user:password lines")
        ->type_name("FILE");
    cmd->add_option("--fabric", opts->fabric, "Fabric directory of the node daemons")
        ->type_name("DIR");
    cmd->add_option("--fabric-timeout", opts->fabric_timeout_ms,
                    "Time budget of the fabric and lending collectors per scrape, in milliseconds")
        ->type_name("MS")
        ->check(CLI::Range(10, 60000))
        ->default_str("1000");
    add_pci_source_options(cmd, opts->pci);
    cmd->callback([opts, &ctx] {
        run_exporter(*opts);
        ctx.exit_code = 0;
    });
}

} // namespace dis::cli
