// The JSON API of docs/api.md over ControlBackend: /api/map, /api/map.dot,
// /api/look, /api/peers, /api/endpoints. Each answer is the bytes meshctl
// prints for the same question (the same parsers, the same formatters).
#pragma once

#include <string>

#include "node/control/backend.h"
#include "node/http/http.h"

namespace flowmesh::ui {

// Whether `path` is one of the API's routes (else a 404 without work).
bool IsApiRoute(std::string_view path);

// Answers one authorized GET/HEAD of an API route. Blocks for as long as the
// backend takes (the map: up to its timeout): run it off the io thread.
http::HttpResponse AnswerApi(const http::HttpRequest& request, ControlBackend& backend,
                             int64_t now_ns);

// {"error": "MESSAGE"} and a newline, with `status`.
http::HttpResponse JsonError(int status, const std::string& message);

}  // namespace flowmesh::ui
