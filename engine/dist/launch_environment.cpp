#include "engine/dist/launch_environment.h"

#include <charconv>
#include <cstdlib>
#include <initializer_list>
#include <string_view>

#include "engine/error.h"

namespace latte {

namespace {

// The value of the first set variable of `names` as an integer >= `minimum`.
std::optional<int> read_int(const std::function<const char*(const char*)>& getenv,
                            std::initializer_list<const char*> names, int minimum,
                            std::string* name_out = nullptr) {
  for (const char* name : names) {
    const char* text = getenv(name);
    if (text == nullptr) continue;
    const std::string_view s(text);
    int value = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    LATTE_CHECK(ec == std::errc() && end == s.data() + s.size() && !s.empty() && value >= minimum)
        << "launch environment: " << name << "='" << s << "' is not an integer >= " << minimum;
    if (name_out != nullptr) *name_out = name;
    return value;
  }
  return std::nullopt;
}

}  // namespace

LaunchEnvironment read_launch_environment(const std::function<const char*(const char*)>& getenv) {
  LaunchEnvironment env;
  env.world_size = read_int(getenv, {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}, 1, &env.size_variable);
  const std::optional<int> rank =
      read_int(getenv, {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"}, 0);
  env.rank = rank.value_or(0);
  LATTE_CHECK(!env.world_size || env.rank < *env.world_size)
      << "launch environment: rank " << env.rank << " is not below " << env.size_variable << "="
      << *env.world_size;
  env.local_rank = read_int(getenv, {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID"}, 0);
  env.launched = env.world_size.has_value() || rank.has_value();
  return env;
}

LaunchEnvironment launch_environment() {
  return read_launch_environment([](const char* name) { return std::getenv(name); });
}

}  // namespace latte
