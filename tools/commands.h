// Subcommands of the `moe` tool. Each registers its flags on the app and returns the function
// that runs it after parsing; the function returns the process exit code.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace moe::cli {

using Run = std::function<int()>;

Run add_estimate(CLI::App& app);
Run add_layer(CLI::App& app);
Run add_bench(CLI::App& app);
Run add_train(CLI::App& app);
Run add_eval(CLI::App& app);
Run add_tokenize(CLI::App& app);
Run add_template(CLI::App& app);
Run add_info(CLI::App& app);
Run add_generate(CLI::App& app);
Run add_data(CLI::App& app);
Run add_analyze(CLI::App& app);
Run add_report(CLI::App& app);
Run add_experiment(CLI::App& app);

}  // namespace moe::cli
