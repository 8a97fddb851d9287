// The TOML subset of meshd's config file: a hand-written parser so that every error can name
// its line and say what to write instead.
#include "node/daemon/config_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <map>

namespace flowmesh {
namespace {

bool IsBareKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Parser {
 public:
  Parser(std::string_view text, std::string_view path) : text_(text), path_(path) {}

  Result<std::vector<ConfigEntry>> Parse() {
    std::vector<ConfigEntry> entries;
    std::map<std::string, int> seen;  // key -> line
    if (text_.starts_with("\xEF\xBB\xBF")) pos_ = 3;
    while (true) {
      SkipBlanks();
      if (AtEnd()) break;
      if (AtNewline()) {
        SkipNewline();
        continue;
      }
      char c = Peek();
      if (c == '#') {
        SkipComment();
        continue;
      }
      if (c == '[') {
        return Error("'" + RestOfLine() +
                     "': tables ([section]) are not supported; put every key at the top level "
                     "and remove this line");
      }
      if (c == '"' || c == '\'') {
        return Error("quoted keys are not supported; write the key bare, e.g. data-dir = \"...\"");
      }
      if (!IsBareKeyChar(c)) return Error("expected key = value, found '" + RestOfLine() + "'");
      ConfigEntry entry;
      entry.line = line_;
      while (!AtEnd() && IsBareKeyChar(Peek())) entry.key += text_[pos_++];
      if (!AtEnd() && Peek() == '.') {
        return Error("dotted keys ('" + entry.key +
                     "...') are not supported; keys are meshd's long flags without --");
      }
      SkipBlanks();
      if (AtEnd() || AtNewline() || Peek() == '#')
        return Error("'" + entry.key + "' has no value; write " + entry.key + " = value");
      if (Peek() != '=') {
        return Error("expected '=' after '" + entry.key + "', found '" + RestOfLine() +
                     "'; keys are letters, digits, - and _");
      }
      ++pos_;
      SkipBlanks();
      if (AtEnd() || AtNewline() || Peek() == '#')
        return Error("'" + entry.key + " =' has no value; write " + entry.key + " = value");
      if (Status s = ParseValue(&entry); !s.ok()) return s;
      SkipBlanks();
      if (!AtEnd() && !AtNewline() && Peek() != '#') {
        return Error("unexpected '" + RestOfLine() + "' after the value of '" + entry.key +
                     "'; write one key = value per line (comments start with #)");
      }
      if (auto [it, fresh] = seen.emplace(entry.key, entry.line); !fresh) {
        return ErrorAt(entry.line, "'" + entry.key + "' is set twice (first on line " +
                                       std::to_string(it->second) + "); keep one");
      }
      entries.push_back(std::move(entry));
    }
    return entries;
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return text_[pos_]; }
  bool AtNewline() const {
    return !AtEnd() && (Peek() == '\n' ||
                        (Peek() == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n'));
  }
  void SkipNewline() {
    pos_ += Peek() == '\r' ? 2 : 1;
    ++line_;
  }
  void SkipBlanks() {
    while (!AtEnd() && (Peek() == ' ' || Peek() == '\t')) ++pos_;
  }
  void SkipComment() {
    while (!AtEnd() && !AtNewline()) ++pos_;
  }
  // Blanks, comments and newlines: what may sit between the elements of an array.
  void SkipBlanksCommentsNewlines() {
    while (true) {
      SkipBlanks();
      if (AtNewline()) {
        SkipNewline();
      } else if (!AtEnd() && Peek() == '#') {
        SkipComment();
      } else {
        return;
      }
    }
  }
  std::string RestOfLine() const {
    size_t end = text_.find_first_of("\r\n", pos_);
    std::string_view rest = text_.substr(pos_, end == std::string_view::npos ? end : end - pos_);
    while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
    return std::string(rest);
  }
  // An unquoted run of characters up to a blank, comment, comma, bracket or line end.
  std::string Word() const {
    size_t end = pos_;
    while (end < text_.size() &&
           std::string_view(" \t\r\n#,]").find(text_[end]) == std::string_view::npos)
      ++end;
    return std::string(text_.substr(pos_, end - pos_));
  }
  Status Error(const std::string& what) const { return ErrorAt(line_, what); }
  Status ErrorAt(int line, const std::string& what) const {
    return InvalidArgument(std::string(path_) + ":" + std::to_string(line) + ": " + what);
  }

  Status ParseValue(ConfigEntry* entry) {
    char c = Peek();
    if (c == '[') return ParseArray(entry);
    std::string value;
    if (c == '"' || c == '\'') {
      FM_RETURN_IF_ERROR(ParseString(entry->key, &value));
      entry->type = ConfigEntry::Type::kString;
    } else if (c == '+' || c == '-' || IsDigit(c)) {
      FM_RETURN_IF_ERROR(ParseInteger(entry->key, &value));
      entry->type = ConfigEntry::Type::kInteger;
    } else if (std::string w = Word(); w == "true" || w == "false") {
      pos_ += w.size();
      value = w;
      entry->type = ConfigEntry::Type::kBool;
    } else if (c == '{') {
      return Error(
          "inline tables ({...}) are not supported; meshd's keys take a string, an "
          "integer, true/false or an array [...]");
    } else {
      return Unquoted(entry->key);
    }
    entry->items.push_back(std::move(value));
    return Status::Ok();
  }

  Status Unquoted(const std::string& key) const {
    std::string w = Word();
    return Error("'" + w + "' is not a value; put strings in double quotes: " + key + " = \"" + w +
                 "\"");
  }

  Status ParseArray(ConfigEntry* entry) {
    int opened = line_;
    entry->type = ConfigEntry::Type::kArray;
    ++pos_;  // '['
    while (true) {
      SkipBlanksCommentsNewlines();
      if (AtEnd()) {
        return ErrorAt(opened, "the array of '" + entry->key + "' is never closed; end it with ]");
      }
      if (Peek() == ']') break;
      char c = Peek();
      std::string value;
      if (c == '"' || c == '\'') {
        FM_RETURN_IF_ERROR(ParseString(entry->key, &value));
      } else if (c == '+' || c == '-' || IsDigit(c)) {
        FM_RETURN_IF_ERROR(ParseInteger(entry->key, &value));
      } else if (c == '[' || c == '{' || Word() == "true" || Word() == "false") {
        return Error("the array of '" + entry->key + "' may hold only strings and integers");
      } else {
        return Unquoted(entry->key);
      }
      entry->items.push_back(std::move(value));
      SkipBlanksCommentsNewlines();
      if (AtEnd()) continue;  // reported above
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != ']') {
        return Error("expected ',' or ']' in the array of '" + entry->key + "', found '" +
                     RestOfLine() + "'");
      }
    }
    ++pos_;  // ']'
    return Status::Ok();
  }

  Status ParseString(const std::string& key, std::string* out) {
    char quote = Peek();
    if (text_.substr(pos_, 3) == std::string(3, quote)) {
      return Error("multi-line strings are not supported; write the value of '" + key +
                   "' on one line");
    }
    ++pos_;
    while (true) {
      if (AtEnd() || Peek() == '\n' || Peek() == '\r') {
        return Error("the string of '" + key + "' is not closed; end it with " +
                     std::string(1, quote) + " on the same line");
      }
      char c = text_[pos_++];
      if (c == quote) return Status::Ok();
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        return Error("control character in the string of '" + key + "'; write \\n or \\t");
      }
      if (c != '\\' || quote == '\'') {
        *out += c;
        continue;
      }
      char e = AtEnd() ? '\0' : text_[pos_++];
      switch (e) {
        case '"': *out += '"'; break;
        case '\\': *out += '\\'; break;
        case 'n': *out += '\n'; break;
        case 't': *out += '\t'; break;
        case 'r': *out += '\r'; break;
        case 'u': {
          // \uXXXX, a code point of the Basic Multilingual Plane, as UTF-8.
          unsigned cp = 0;
          auto [end, ec] = std::from_chars(text_.data() + pos_,
                                           text_.data() + std::min(pos_ + 4, text_.size()), cp, 16);
          if (ec != std::errc() || end != text_.data() + pos_ + 4 || (cp >= 0xD800 && cp <= 0xDFFF))
            return Error("bad \\u escape in the string of '" + key +
                         "'; write four hex digits of a code point, e.g. \\u00E9");
          pos_ += 4;
          if (cp < 0x80) {
            *out += static_cast<char>(cp);
          } else if (cp < 0x800) {
            *out += static_cast<char>(0xC0 | (cp >> 6));
            *out += static_cast<char>(0x80 | (cp & 0x3F));
          } else {
            *out += static_cast<char>(0xE0 | (cp >> 12));
            *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            *out += static_cast<char>(0x80 | (cp & 0x3F));
          }
          break;
        }
        default:
          return Error("unsupported escape '\\" + std::string(1, e) + "' in the string of '" + key +
                       "'; use \\\", \\\\, \\n, \\t, \\r or \\uXXXX (or a 'literal string' without "
                       "escapes)");
      }
    }
  }

  Status ParseInteger(const std::string& key, std::string* out) {
    std::string w = Word();
    std::string digits;
    bool negative = false;
    size_t i = 0;
    if (i < w.size() && (w[i] == '+' || w[i] == '-')) negative = w[i++] == '-';
    bool ok = i < w.size();
    for (; ok && i < w.size(); ++i) {
      if (IsDigit(w[i])) {
        digits += w[i];
      } else if (!(w[i] == '_' && i > 0 && IsDigit(w[i - 1]) && i + 1 < w.size() &&
                   IsDigit(w[i + 1]))) {
        ok = false;
      }
    }
    if (!ok) {
      return Error("'" + w + "' is not an integer; put strings in double quotes: " + key + " = \"" +
                   w + "\"");
    }
    int64_t value = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc()) return Error("'" + w + "' is too large for an integer");
    if (digits.size() > 1 && digits[0] == '0') {
      return Error("'" + w + "': TOML integers have no leading zeros; write " + key + " = " +
                   std::to_string(value) + " or a \"string\"");
    }
    pos_ += w.size();
    *out = std::to_string(negative ? -value : value);
    return Status::Ok();
  }

  std::string_view text_;
  std::string_view path_;
  size_t pos_ = 0;
  int line_ = 1;
};

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

Result<std::vector<ConfigEntry>> ParseConfigText(std::string_view text, std::string_view path) {
  return Parser(text, path).Parse();
}

Result<std::string> ReadConfigFile(const std::string& path) {
  // O_NONBLOCK: opening a FIFO nobody writes to must not hang start-up; the
  // file type is checked right after.
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return Status::FromErrno(errno, "cannot open config file " + path);
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    Status s = Status::FromErrno(errno, "cannot stat config file " + path);
    close(fd);
    return s;
  }
  // /dev/zero, /dev/stdin or a FIFO would be read forever or block; a
  // config file is a small regular file.
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return InvalidArgument("config file " + path +
                           " is not a regular file; give a file of `key = value` lines, or "
                           "--config \"\" to read none");
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigFileBytes) {
    close(fd);
    return InvalidArgument("config file " + path + " is " + std::to_string(st.st_size) +
                           " bytes; meshd reads at most " + std::to_string(kMaxConfigFileBytes) +
                           " (a config file is a few dozen lines)");
  }
  std::string text;
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status s = Status::FromErrno(errno, "cannot read config file " + path);
      close(fd);
      return s;
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // It may grow while being read.
    if (text.size() > kMaxConfigFileBytes) {
      close(fd);
      return InvalidArgument("config file " + path + " is over " +
                             std::to_string(kMaxConfigFileBytes) +
                             " bytes; meshd reads at most that (a config file is a few dozen "
                             "lines)");
    }
  }
  close(fd);
  return text;
}

std::string SuggestKey(std::string_view key, const std::vector<std::string>& known) {
  std::string wanted(key);
  std::replace(wanted.begin(), wanted.end(), '_', '-');
  std::transform(wanted.begin(), wanted.end(), wanted.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (wanted.starts_with("-")) wanted.erase(0, 1);
  std::string best;
  size_t best_distance = std::max<size_t>(2, wanted.size() / 4) + 1;
  for (const std::string& k : known) {
    size_t d = EditDistance(wanted, k);
    if (d < best_distance) {
      best = k;
      best_distance = d;
    }
  }
  return best;
}

std::string TomlQuote(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
          char esc[8];  // other control characters: TOML's \uXXXX, so the value reads back
          std::snprintf(esc, sizeof esc, "\\u%04X", static_cast<unsigned char>(c));
          out += esc;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace flowmesh
