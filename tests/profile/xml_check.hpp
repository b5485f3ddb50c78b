// A small well-formedness checker for the SVG the swimlane writer emits: one root element,
// properly nested and matched tags, quoted attributes, known entities, no stray '<' or '&'.
#pragma once

#include <string>
#include <string_view>

namespace tmr::testing {

struct XmlCheck {
  std::string error;         // empty: well-formed
  std::string root;          // the root element's name
  std::size_t elements = 0;  // elements counted, the root included
};

XmlCheck check_xml(std::string_view text);

// How many start tags named `name` the document has ("rect" counts "<rect ").
std::size_t count_elements(std::string_view text, std::string_view name);

}  // namespace tmr::testing
