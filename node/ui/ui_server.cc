// Routing (login, logout, auth, API, assets), the API worker pool, counters.
#include "node/ui/ui_server.h"

#include <exception>

#include "node/common/clock.h"
#include "node/common/log.h"
#include "node/common/sched.h"
#include "node/look/map_types.h"
#include "node/metrics/exposition.h"
#include "node/ui/api.h"
#include "node/ui/assets.h"

namespace flowmesh::ui {
namespace {

using http::HttpRequest;
using http::HttpResponse;

// When ui/login.html is not in the manifest: the same form, plain.
constexpr std::string_view kBuiltinLogin =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>flowmesh: sign "
    "in</title></head><body><form method=\"post\" action=\"/login\"><label>Token <input "
    "name=\"token\" type=\"password\" required autofocus></label> <button>Sign in</button>"
    "</form></body></html>\n";

HttpResponse LoginPage(int status) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/html; charset=utf-8";
  const Asset* a = FindAsset("/login");
  r.body = std::string(a ? a->body : kBuiltinLogin);
  return r;
}

HttpResponse AssetResponse(std::string_view path) {
  const Asset* a = FindAsset(path);
  if (!a) return http::TextError(404, "not found: " + std::string(path));
  HttpResponse ok;
  ok.content_type = std::string(a->content_type);
  ok.body = std::string(a->body);
  return ok;
}

HttpResponse Redirect(const std::string& to) {
  HttpResponse r = http::TextError(303, "see " + to);
  r.headers.emplace_back("Location", to);
  return r;
}

}  // namespace

const Asset* FindAsset(std::string_view path) {
  for (const Asset& a : Assets())
    if (a.path == path) return &a;
  return nullptr;
}

UiServer::UiServer(UiOptions options, ControlBackend* backend, std::optional<std::string> token)
    : options_(std::move(options)),
      backend_(backend),
      auth_(std::move(token), options_.listen.port) {}

Result<std::unique_ptr<UiServer>> UiServer::Start(UiOptions options, ControlBackend* backend) {
  if (!options.token && !options.listen.addr.is_loopback())
    return InvalidArgument("refusing to serve the page on " + options.listen.ToString() +
                           " without a token: give --ui-token-file FILE, or listen on a "
                           "loopback address (127.0.0.1:PORT)");
  if (!options.now_ns) options.now_ns = [] { return RealtimeNs(); };
  // Auth keeps only digests of the token; no other copy stays behind.
  std::optional<std::string> token = std::move(options.token);
  options.token.reset();
  std::unique_ptr<UiServer> ui(new UiServer(std::move(options), backend, std::move(token)));
  http::HttpServerOptions o;
  o.listen = ui->options_.listen;
  o.max_request_bytes = ui->options_.max_head_bytes;
  o.max_body_bytes = ui->options_.max_login_bytes;
  o.max_connections = ui->options_.max_connections;
  o.timeout = ui->options_.request_timeout;
  o.answer_timeout = ui->options_.answer_timeout;
  o.max_connections_per_peer = ui->options_.max_connections_per_peer;
  o.log_tag = "ui";
  o.headers = {{"Content-Security-Policy", std::string(kContentSecurityPolicy)},
               {"X-Content-Type-Options", "nosniff"},
               {"X-Frame-Options", "DENY"},
               // same-origin, not no-referrer: under no-referrer a browser sends
               // "Origin: null" with the login form's POST, and over plain HTTP
               // (no Sec-Fetch-Site off loopback) Origin is all CrossSite has.
               {"Referrer-Policy", "same-origin"}};
  UiServer* self = ui.get();
  Result<std::unique_ptr<http::HttpServer>> server = http::HttpServer::Start(
      o, [self](HttpRequest r, http::Responder resp) { self->Handle(std::move(r), resp); });
  if (!server.ok()) return server.status();
  ui->http_ = std::move(*server);
  if (!ui->options_.listen.addr.is_loopback())
    FM_LOG(Warn, "ui") << "plain HTTP: the token, the session cookie and the map cross the "
                          "network to "
                       << ui->options_.listen.ToString()
                       << " unencrypted; put a TLS reverse proxy in front, or listen on "
                          "127.0.0.1 and reach it through an SSH tunnel (README \"The map page\")";
  for (size_t i = 0; i < ui->options_.workers; ++i)
    ui->workers_.emplace_back([self] { self->Work(); });
  return ui;
}

UiServer::~UiServer() { Stop(); }

void UiServer::Stop() {
  if (http_) http_->Stop();  // no new requests; answers still queued go nowhere
  size_t running = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    in_flight_ -= queue_.size();
    queue_.clear();
    running = in_flight_;
  }
  // A running call reads the store and asks the mesh, which meshd tears down
  // next, and nothing can cut it short: it is waited for, and the operator
  // told why the stop takes that long.
  if (running > 0)
    FM_LOG(Info, "ui") << "waiting for " << running
                       << " API call(s) under way; each ends by its own timeout (at most "
                       << kMaxMapTimeoutNs / 1'000'000'000 << "s)";
  wake_.notify_all();
  for (std::thread& t : workers_) t.join();
}

void UiServer::Work() {
  SetThreadName("ui-worker");
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    // A formatter or backend that throws must not take meshd down: the
    // job's Responder, dropped unanswered, answers 500.
    try {
      job();
    } catch (const std::exception& e) {
      FM_LOG(Error, "ui") << "an API call failed: " << e.what();
      std::lock_guard<std::mutex> lock(mu_);
      ++by_code_[500];
    }
    std::lock_guard<std::mutex> lock(mu_);
    --in_flight_;
  }
}

bool UiServer::Enqueue(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || in_flight_ >= options_.max_in_flight) return false;
    ++in_flight_;
    queue_.push_back(std::move(job));
  }
  wake_.notify_one();
  return true;
}

void UiServer::Reject(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  ++rejected_[reason];
}

void UiServer::Send(const http::Responder& responder, HttpResponse response, bool api) {
  if (api && response.body.size() > options_.max_api_bytes) {
    FM_LOG(Warn, "ui") << "an API answer of " << response.body.size() << " bytes is over the cap";
    bool head = response.head_only;
    response = JsonError(
        500, "the answer is " + std::to_string(response.body.size()) + " bytes, over the cap of " +
                 std::to_string(options_.max_api_bytes) +
                 "; ask for less (a shorter 'since', one 'host' or 'workload', a smaller 'depth')");
    response.head_only = head;
  }
  if (api) response.headers.emplace_back("Cache-Control", "no-store");
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++by_code_[response.status];
  }
  responder.Send(std::move(response));
}

void UiServer::Handle(HttpRequest r, http::Responder resp) {
  const bool api = r.path.starts_with("/api/");
  const bool head = r.head();
  auto send = [&](HttpResponse response) {
    response.head_only = head;
    Send(resp, std::move(response), api);
  };
  auto throttled = [&] {
    Reject("throttled");
    HttpResponse slow = api ? JsonError(429, "too many wrong tokens; try again later")
                            : http::TextError(429, "too many wrong tokens; try again later");
    slow.headers.emplace_back("Retry-After", std::to_string(auth_.RetryAfterSeconds(r.peer)));
    return send(std::move(slow));
  };
  if (r.path == "/login" && r.method == "POST") {
    // Another site's page could post wrong tokens from the operator's
    // browser and spend the budget of the operator's own address.
    if (CrossSite(r)) {
      Reject("cross_site");
      return send(http::TextError(403, "a login posted from another site is refused"));
    }
    Result<std::vector<std::pair<std::string, std::string>>> form = http::ParseForm(r.body);
    std::string token;
    if (form.ok())
      for (const auto& [name, value] : *form)
        if (name == "token") token = value;
    if (!form.ok() || token.empty())
      return send(http::TextError(400, "POST /login takes the form field 'token'"));
    switch (auth_.CheckToken(token, r.peer)) {
      case AuthResult::kOk: {
        HttpResponse ok = Redirect("/");
        if (auth_.required()) ok.headers.emplace_back("Set-Cookie", auth_.SessionCookie());
        return send(ok);
      }
      case AuthResult::kThrottled: return throttled();
      default: {
        HttpResponse no = LoginPage(401);
        no.headers.emplace_back("WWW-Authenticate", "Bearer");
        return send(no);
      }
    }
  }
  if (r.method != "GET" && r.method != "HEAD") {
    Reject("method");
    HttpResponse no = http::TextError(405,
                                      "method not allowed; the page and its API are "
                                      "read-only (GET, HEAD; POST /login)");
    no.allow = r.path == "/login" ? "GET, HEAD, POST" : "GET, HEAD";
    return send(no);
  }
  if (r.path == "/logout") {
    // Only a signed-in browser's own sign-out revokes the sessions: another
    // site's link to /logout must not sign the operator out.
    if (!CrossSite(r) && auth_.required() && auth_.Check(r) == AuthResult::kOk)
      auth_.RevokeSessions();
    HttpResponse out = Redirect("/login");
    out.headers.emplace_back("Set-Cookie", auth_.ClearedCookie());
    return send(out);
  }
  if (!auth_.required() && !HostAllowed(r)) {
    Reject("host");
    return send(http::TextError(
        403, "Host '" + std::string(*r.Header("host")) +
                 "' is not this listener's address, so a page elsewhere may be reaching it "
                 "through DNS rebinding; open http://" +
                 options_.listen.ToString() +
                 "/ (or http://localhost:PORT/), or give --ui-token-file"));
  }
  if (r.path == "/login") return send(LoginPage(200));
  // The login page's own look: nothing in them to protect.
  if (r.path == "/style.css" || r.path == "/favicon.svg") return send(AssetResponse(r.path));
  switch (auth_.Check(r)) {
    case AuthResult::kOk: break;
    case AuthResult::kThrottled: return throttled();
    default: {
      HttpResponse no =
          api ? JsonError(401,
                          "a token is required: send 'Authorization: Bearer TOKEN' (the "
                          "contents of meshd's --ui-token-file) or sign in at /login")
              : LoginPage(401);
      no.headers.emplace_back("WWW-Authenticate", "Bearer");
      return send(no);
    }
  }
  // After the token: a browser signed in to this listener sends its cookie
  // along with another local site's <img> (SameSite is by host, not port).
  if (api && !ApiCallFromThePage(r)) {
    Reject("cross_site");
    return send(JsonError(
        403, std::string("an API call needs the header '") + std::string(kApiHeader) +
                 ": 1' (the page sends it; another site's page cannot) or "
                 "'Authorization: Bearer TOKEN', and no Sec-Fetch-Site other than same-origin"));
  }
  if (api) {
    if (!IsApiRoute(r.path))
      return send(JsonError(404, "no API route " + r.path + "; see docs/api.md"));
    auto job = [this, r = std::move(r), resp, head] {
      HttpResponse answer = AnswerApi(r, *backend_, options_.now_ns());
      answer.head_only = head;
      Send(resp, std::move(answer), true);
    };
    if (Enqueue(std::move(job))) return;
    Reject("busy");
    HttpResponse busy = JsonError(503, "busy: " + std::to_string(options_.max_in_flight) +
                                           " API calls already in flight; retry shortly");
    busy.headers.emplace_back("Retry-After", "1");
    return send(busy);
  }
  send(AssetResponse(r.path));
}

bool UiServer::CrossSite(const HttpRequest& r) const {
  // Browsers since 2020-2023 say where a request comes from; "none" is a
  // typed address or a bookmark. A request without it (curl, an old browser)
  // is judged by Origin, which browsers send with every POST.
  if (std::optional<std::string_view> site = r.Header("sec-fetch-site"))
    return *site != "same-origin" && *site != "none";
  std::optional<std::string_view> origin = r.Header("origin");
  if (!origin) return false;
  std::optional<std::string_view> host = r.Header("host");
  return !host ||
         (*origin != "http://" + std::string(*host) && *origin != "https://" + std::string(*host));
}

bool UiServer::ApiCallFromThePage(const HttpRequest& r) const {
  if (CrossSite(r)) return false;
  // Neither header can come from another site's <img>, <form> or link, and a
  // cross-site fetch that sets one is preflighted, which this listener never
  // allows (OPTIONS is 405). A Bearer header is never sent by a browser on
  // its own, so curl with the token needs nothing more.
  if (std::optional<std::string_view> h = r.Header(kApiHeaderLower)) return *h == "1";
  std::optional<std::string_view> a = r.Header("authorization");
  return a && a->size() > 7 && (a->starts_with("Bearer ") || a->starts_with("bearer "));
}

bool UiServer::HostAllowed(const HttpRequest& r) const {
  std::optional<std::string_view> host = r.Header("host");
  if (!host) return true;  // HTTP/1.0 without one: no browser sends that
  std::string_view h = *host;
  // Without the port: "[::1]:7947" -> "[::1]", "localhost:8080" -> "localhost".
  size_t colon = h.rfind(':');
  if (colon != std::string_view::npos && h.find(']', colon) == std::string_view::npos)
    h = h.substr(0, colon);
  if (h.starts_with('[') && h.ends_with(']')) h = h.substr(1, h.size() - 2);
  if (h == "localhost") return true;
  Result<IpAddr> ip = IpAddr::Parse(h);
  // An address literal is no DNS name to rebind; a tunnel's port may differ.
  return ip.ok() && (ip->is_loopback() || *ip == options_.listen.addr);
}

UiStats UiServer::Stats() const {
  UiStats s;
  {
    std::lock_guard<std::mutex> lock(mu_);
    s.requests = by_code_;
    s.rejected = rejected_;
  }
  s.auth_failures = auth_.Stats().failures;
  http::HttpServerStats h = http_->Stats();
  // The listener's own refusals, before any route saw the request.
  s.rejected["connections"] += h.rejected;
  s.rejected["timeout"] += h.timed_out;
  s.rejected["too_large"] += h.too_large;
  s.rejected["malformed"] += h.malformed;
  return s;
}

std::string UiServer::StatusLine() const {
  return "on: http://" + local_endpoint().ToString() + "/" +
         (auth_.required() ? " (token required)" : " (no token: loopback only)");
}

std::string UiServer::RenderMetrics() const {
  UiStats s = Stats();
  metrics::Exposition e;
  e.Family("flowmesh_ui_requests_total", metrics::Type::kCounter,
           "Web page and API requests answered, by HTTP status code.");
  for (const auto& [code, n] : s.requests)
    e.Sample("flowmesh_ui_requests_total", {{"code", std::to_string(code)}}, n);
  e.Counter("flowmesh_ui_auth_failures_total",
            "Wrong tokens and session cookies presented to the web listener.", s.auth_failures);
  e.Family("flowmesh_ui_rejected_total", metrics::Type::kCounter,
           "Requests and connections the web listener refused, by reason (connections, "
           "timeout, too_large, malformed, method, host, cross_site, busy, throttled).");
  for (const auto& [reason, n] : s.rejected)
    e.Sample("flowmesh_ui_rejected_total", {{"reason", reason}}, n);
  return e.Take();
}

}  // namespace flowmesh::ui
