// The `moe` command: parses flags, calls the library, prints. No math here.
#include <iostream>

#include "commands.h"
#include "moe/error.h"

int main(int argc, char** argv) {
  CLI::App app{"moe.cpp: a Mixture-of-Experts engine for CPUs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "moe 0.1.0");
  moe::cli::Run estimate = moe::cli::add_estimate(app);
  moe::cli::Run layer = moe::cli::add_layer(app);
  moe::cli::Run bench = moe::cli::add_bench(app);
  moe::cli::Run train = moe::cli::add_train(app);
  moe::cli::Run generate = moe::cli::add_generate(app);
  moe::cli::Run data = moe::cli::add_data(app);
  moe::cli::Run analyze = moe::cli::add_analyze(app);
  moe::cli::Run report = moe::cli::add_report(app);
  moe::cli::Run experiment = moe::cli::add_experiment(app);

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
    std::cerr << "moe: error: " << e.what() << "\n";
    return 2;
  }

  try {
    if (app.got_subcommand("estimate")) return estimate();
    if (app.got_subcommand("layer")) return layer();
    if (app.got_subcommand("bench")) return bench();
    if (app.got_subcommand("train")) return train();
    if (app.got_subcommand("generate")) return generate();
    if (app.got_subcommand("data")) return data();
    if (app.got_subcommand("analyze")) return analyze();
    if (app.got_subcommand("report")) return report();
    if (app.got_subcommand("experiment")) return experiment();
  } catch (const moe::InvalidInput& e) {
    std::cerr << "moe: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "moe: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
