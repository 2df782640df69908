# Routing analysis and the HTML report: unit tests, `moe analyze` + `moe report` end to end
# (tests/cli/test_report_cli.py), and a Chromium render check of the report it leaves behind.
moe_add_gtest(test_analysis)
moe_add_gtest(test_analysis_report)
moe_add_gtest(test_report_experiments)
set(report_cli_out ${CMAKE_CURRENT_BINARY_DIR}/report_cli)
add_test(NAME report_cli
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_report_cli.py $<TARGET_FILE:moe_cli> ${report_cli_out})
set_tests_properties(report_cli PROPERTIES TIMEOUT 600 FIXTURES_SETUP report_html)
add_test(NAME report_render
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_report_cli.py --render ${report_cli_out}/report.html
                 --chromium ${MOE_CHROMIUM} --keep ${report_cli_out}/report.png)
set_tests_properties(report_render PROPERTIES FIXTURES_REQUIRED report_html TIMEOUT 180)
# `moe experiment` on a tiny model: its table and summary.json (tests/cli/test_experiment_cli.py).
add_test(NAME experiment_cli
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_experiment_cli.py $<TARGET_FILE:moe_cli>
                 ${CMAKE_CURRENT_BINARY_DIR}/experiment_cli)
set_tests_properties(experiment_cli PROPERTIES TIMEOUT 300)
