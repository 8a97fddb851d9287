// The page's files, embedded into meshd at build time from ui/assets.txt
// (cmake/EmbedUiAssets.cmake writes the table).
#pragma once

#include <span>
#include <string_view>

namespace flowmesh::ui {

struct Asset {
  std::string_view path;          // "/", "/app.js"
  std::string_view content_type;  // "text/html; charset=utf-8"
  std::string_view body;
};

// Every listed file, in the manifest's order.
std::span<const Asset> Assets();

// The file served at `path`, or null.
const Asset* FindAsset(std::string_view path);

}  // namespace flowmesh::ui
