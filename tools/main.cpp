// The `moe` command: parses flags, calls the library, prints. No math here.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "moe/error.h"

namespace {

// Edit distance (insert, delete, substitute, swap two neighbours): how "--top-k" is near "--top_k".
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The closest of `names` to `word` if it is close enough to be a likely typo, else "".
std::string nearest(const std::string& word, const std::vector<std::string>& names) {
  std::string best;
  size_t best_d = std::max<size_t>(2, word.size() / 4) + 1;
  for (const std::string& n : names) {
    std::string w = word, m = n;
    std::replace(w.begin(), w.end(), '-', '_');  // --top-k for --top_k is one mistake, not two
    std::replace(m.begin(), m.end(), '-', '_');
    const size_t d = edit_distance(w, m);
    if (d < best_d) best_d = d, best = n;
  }
  return best;
}

std::vector<std::string> long_flags(const CLI::App* c) {
  std::vector<std::string> names;
  for (const CLI::Option* o : c->get_options())
    for (const std::string& n : o->get_lnames()) names.push_back("--" + n);
  return names;
}

std::vector<std::string> subcommand_names(CLI::App* c) {
  std::vector<std::string> names;
  for (const CLI::App* s : c->get_subcommands({})) names.push_back(s->get_name());
  return names;
}

// CLI11 (2.1) saturates an integer too big for its type and wraps a negative unsigned one:
// "--steps 99999999999999999999" would train for 2^63-1 steps, "--seed -1" use 2^64-1.
std::string out_of_range(const std::string& type, const std::string& value) {
  if (type != "INT" && type != "UINT") return "";
  const size_t digits = value.find_first_not_of("+-");
  if (digits != std::string::npos && digits <= 1 && value.find_first_not_of("0123456789", digits) == std::string::npos) {
    if (type == "UINT" && value[0] == '-') return "must be >= 0";
    errno = 0;
    char* end = nullptr;
    if (type == "INT") (void)std::strtoll(value.c_str(), &end, 10);
    else (void)std::strtoull(value.c_str(), &end, 10);
    if (errno == ERANGE) return std::string("is out of range for a ") + (type == "INT" ? "64-bit" : "64-bit unsigned") + " integer";
  }
  return "";
}

// Before parsing: an unknown command or --flag, one line each, with the nearest known one, and
// integers out of range. CLI11 would report
// a missing required flag first, which hides the typo that caused it. "" if every word is known.
std::string unknown_words(CLI::App& app, int argc, char** argv) {
  CLI::App* cmd = &app;
  std::string out;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    if (arg.rfind("--", 0) == 0) {
      const std::string word = arg.substr(0, arg.find('='));
      const std::vector<std::string> known = long_flags(cmd);
      if (std::find(known.begin(), known.end(), word) != known.end()) {
        const CLI::Option* o = cmd->get_option_no_throw(word);
        if (!o || o->get_items_expected_min() == 0) continue;
        const size_t eq = arg.find('=');
        const bool inline_value = eq != std::string::npos;
        if (!inline_value && i + 1 >= argc) continue;  // CLI11 reports the missing value
        const std::string value = inline_value ? arg.substr(eq + 1) : std::string(argv[++i]);
        if (const std::string e = out_of_range(o->get_type_name(), value); !e.empty())
          out += "\nmoe: error: " + word + "=" + value + " " + e;
        continue;
      }
      const std::string hint = nearest(word, known);
      const std::string help = "`moe " + (cmd == &app ? std::string() : cmd->get_name() + " ") + "--help`";
      out += "\nmoe: error: unknown flag " + word + (cmd == &app ? "" : " for `moe " + cmd->get_name() + "`") +
             (hint.empty() ? "; " + help + " lists the flags" : "; did you mean " + hint + "?");
    } else if (arg.rfind('-', 0) != 0) {
      if (CLI::App* sub = [&]() -> CLI::App* {
            for (CLI::App* s : cmd->get_subcommands({}))
              if (s->get_name() == arg) return s;
            return nullptr;
          }()) {
        cmd = sub;
      } else if (cmd == &app) {
        const std::string hint = nearest(arg, subcommand_names(&app));
        return "moe: error: unknown command '" + arg + "'" + (hint.empty() ? "" : "; did you mean " + hint + "?") +
               "\nmoe: commands: " + CLI::detail::join(subcommand_names(&app), ", ");
      }
    }
  }
  return out.empty() ? out : out.substr(1);
}

// OpenMP's default wait (libgomp spins ~300,000 times at every barrier) collapses when another
// process wants a core: a spinning thread holds its core while the thread it waits for is
// descheduled (generation 114 -> 19 tokens/s with one busy process; docs/performance.md). A short
// spin then sleep keeps 95% of the quiet speed and degrades to about one thread's speed. libgomp
// reads its environment before main, so the command restarts itself once with the setting; a
// user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
void use_graceful_wait_policy(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  ::setenv("GOMP_SPINCOUNT", "1000", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then run with the default policy
}

}  // namespace

int main(int argc, char** argv) {
  use_graceful_wait_policy(argv);
  CLI::App app{"moe.cpp: a Mixture-of-Experts engine for CPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moe 0.1.0");
  const std::vector<std::pair<std::string, moe::cli::Run>> commands = {
      {"estimate", moe::cli::add_estimate(app)}, {"layer", moe::cli::add_layer(app)},
      {"bench", moe::cli::add_bench(app)},       {"train", moe::cli::add_train(app)},
      {"eval", moe::cli::add_eval(app)},         {"generate", moe::cli::add_generate(app)},
      {"data", moe::cli::add_data(app)},         {"analyze", moe::cli::add_analyze(app)},
      {"report", moe::cli::add_report(app)},     {"experiment", moe::cli::add_experiment(app)},
      {"tokenize", moe::cli::add_tokenize(app)}, {"template", moe::cli::add_template(app)},
      {"info", moe::cli::add_info(app)},
  };

  if (const std::string err = unknown_words(app, argc, argv); !err.empty()) {
    std::cerr << err << "\n";
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // Like argparse: the problem on one line, exit status 2.
    std::string what = e.what();
    if (const size_t at = what.find(": At Most 1 required but received "); at != std::string::npos)
      what = what.substr(0, at) + " is given " + what.substr(at + 34) + " times; give it once";
    std::cerr << "moe: error: " << what << "\n";
    if (app.get_subcommands().empty())
      std::cerr << "moe: commands: " << CLI::detail::join(subcommand_names(&app), ", ") << "\n";
    return 2;
  }

  try {
    for (const auto& [name, run] : commands)
      if (app.got_subcommand(name)) return run();
  } catch (const moe::InvalidInput& e) {
    std::cerr << "moe: error: " << e.what() << "\n";
    return 2;
  } catch (const moe::Interrupted& e) {
    std::cerr << "moe: " << e.what() << "\n";
    return 130;  // like a shell for a job stopped by Ctrl-C
  } catch (const std::filesystem::filesystem_error& e) {
    // A path the user gave that cannot be read or written: their input, said plainly.
    std::cerr << "moe: error: " << e.code().message() << ": " << e.path1().string();
    if (!e.path2().empty()) std::cerr << " -> " << e.path2().string();
    std::cerr << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "moe: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
