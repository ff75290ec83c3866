// Reading the message of a latte::Error in tests: error_of() runs an action and returns what it
// threw, and CHECK_CONTAINS checks that a text holds a part, printing both when it does not.
#pragma once

#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "engine/error.h"

#define CHECK_CONTAINS(text, part)                                 \
  CHECK_MESSAGE(std::string(text).find(part) != std::string::npos, \
                "expected to find [" << (part) << "] in [" << (text) << "]")

namespace latte::test {

// The message of the latte::Error that `action` throws; fails the current test and returns ""
// when it throws none.
template <typename Action>
std::string error_of(Action&& action) {
  try {
    std::forward<Action>(action)();
  } catch (const latte::Error& error) {
    return error.what();
  }
  FAIL_CHECK("expected a latte::Error, none was thrown");
  return "";
}

}  // namespace latte::test
