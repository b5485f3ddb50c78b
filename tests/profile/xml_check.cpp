#include "profile/xml_check.hpp"

#include <cctype>
#include <vector>

namespace tmr::testing {

namespace {

bool name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == ':' ||
         c == '.';
}

class Parser {
 public:
  explicit Parser(std::string_view text) : text_(text) {}

  XmlCheck run() {
    skip_space();
    if (text_.substr(pos_, 5) == "<?xml") {
      const std::size_t end = text_.find("?>", pos_);
      if (end == std::string_view::npos) return fail("unterminated XML declaration");
      pos_ = end + 2;
    }
    while (pos_ < text_.size()) {
      if (text_[pos_] == '<') {
        if (!markup()) return result_;
      } else if (!text()) {
        return result_;
      }
    }
    if (!open_.empty()) return fail("element <" + open_.back() + "> is never closed");
    if (result_.root.empty()) return fail("no root element");
    return result_;
  }

 private:
  XmlCheck fail(const std::string& why) {
    error(why);
    return result_;
  }
  bool error(const std::string& why) {
    result_.error = why + " at offset " + std::to_string(pos_);
    return false;
  }
  void skip_space() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_])))
      ++pos_;
  }
  std::string name() {
    const std::size_t begin = pos_;
    while (pos_ < text_.size() && name_char(text_[pos_]))
      ++pos_;
    return std::string(text_.substr(begin, pos_ - begin));
  }
  bool entity() {  // at '&'
    const std::size_t end = text_.find(';', pos_);
    if (end == std::string_view::npos || end - pos_ > 10) return error("bad entity");
    const std::string_view e = text_.substr(pos_ + 1, end - pos_ - 1);
    const bool known = e == "amp" || e == "lt" || e == "gt" || e == "quot" || e == "apos" ||
                       (!e.empty() && e[0] == '#');
    if (!known) return error("unknown entity &" + std::string(e) + ";");
    pos_ = end + 1;
    return true;
  }
  bool text() {
    if (open_.empty() && !std::isspace(static_cast<unsigned char>(text_[pos_]))) {
      return error("text outside the root element");
    }
    while (pos_ < text_.size() && text_[pos_] != '<') {
      if (text_[pos_] == '&') {
        if (!entity()) return false;
      } else {
        ++pos_;
      }
    }
    return true;
  }
  bool markup() {  // at '<'
    if (text_.substr(pos_, 4) == "<!--") {
      const std::size_t end = text_.find("-->", pos_);
      if (end == std::string_view::npos) return error("unterminated comment");
      pos_ = end + 3;
      return true;
    }
    if (text_.substr(pos_, 2) == "</") {
      pos_ += 2;
      const std::string n = name();
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '>') return error("bad end tag");
      ++pos_;
      if (open_.empty() || open_.back() != n) return error("unexpected </" + n + ">");
      open_.pop_back();
      return true;
    }
    ++pos_;
    const std::string n = name();
    if (n.empty()) return error("stray '<'");
    if (open_.empty()) {
      if (!result_.root.empty()) return error("a second root element <" + n + ">");
      result_.root = n;
    }
    ++result_.elements;
    std::vector<std::string> attributes;
    for (;;) {
      skip_space();
      if (pos_ >= text_.size()) return error("unterminated tag <" + n + ">");
      if (text_.substr(pos_, 2) == "/>") {
        pos_ += 2;
        return true;
      }
      if (text_[pos_] == '>') {
        ++pos_;
        open_.push_back(n);
        return true;
      }
      const std::string attribute = name();
      if (attribute.empty()) return error("bad attribute in <" + n + ">");
      for (const std::string& a : attributes) {
        if (a == attribute) return error("duplicate attribute " + attribute);
      }
      attributes.push_back(attribute);
      skip_space();
      if (pos_ >= text_.size() || text_[pos_] != '=') return error("attribute without '='");
      ++pos_;
      skip_space();
      if (pos_ >= text_.size() || (text_[pos_] != '"' && text_[pos_] != '\'')) {
        return error("unquoted attribute " + attribute);
      }
      const char quote = text_[pos_++];
      while (pos_ < text_.size() && text_[pos_] != quote) {
        if (text_[pos_] == '<') return error("'<' in an attribute value");
        if (text_[pos_] == '&') {
          if (!entity()) return false;
        } else {
          ++pos_;
        }
      }
      if (pos_ >= text_.size()) return error("unterminated attribute value");
      ++pos_;
    }
  }

  std::string_view text_;
  std::size_t pos_ = 0;
  std::vector<std::string> open_;
  XmlCheck result_;
};

}  // namespace

XmlCheck check_xml(std::string_view text) {
  return Parser(text).run();
}

std::size_t count_elements(std::string_view text, std::string_view name) {
  const std::string needle = "<" + std::string(name) + " ";
  std::size_t count = 0;
  for (std::size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

}  // namespace tmr::testing
