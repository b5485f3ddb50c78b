#include "common/catalog.hpp"

#include <algorithm>
#include <mutex>

#include "tmr/error.hpp"

namespace tmr::examples {

namespace {

struct Catalog {
  std::mutex mutex;
  std::vector<std::function<Example()>> makers;  // filled during static initialisation
  std::vector<Example> examples;                 // built on first use, after main() starts
  bool built = false;
};

// A function-local static, so registration works whatever the static-initialisation order.
Catalog& catalog() {
  static Catalog instance;
  return instance;
}

}  // namespace

bool register_example(std::function<Example()> make) {
  Catalog& c = catalog();
  const std::lock_guard lock(c.mutex);
  c.makers.push_back(std::move(make));
  return true;
}

const std::vector<Example>& all_examples() {
  Catalog& c = catalog();
  const std::lock_guard lock(c.mutex);
  if (!c.built) {
    for (const auto& make : c.makers)
      c.examples.push_back(make());
    std::sort(c.examples.begin(), c.examples.end(),
              [](const Example& a, const Example& b) { return a.name < b.name; });
    for (std::size_t i = 1; i < c.examples.size(); ++i) {
      if (c.examples[i].name == c.examples[i - 1].name) {
        throw Error(ErrorCode::invalid_args,
                    "two examples are called '" + c.examples[i].name + "'; rename one folder's");
      }
    }
    c.built = true;
  }
  return c.examples;
}

const Example* find_example(const std::string& name) {
  for (const Example& example : all_examples()) {
    if (example.name == name) return &example;
  }
  return nullptr;
}

int Example::find_case(const std::string& case_name) const {
  for (std::size_t i = 0; i < cases.size(); ++i) {
    if (cases[i].name == case_name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace tmr::examples
