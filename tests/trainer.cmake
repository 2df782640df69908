# `moe train` / `moe generate` end to end (tests/cli/test_train_cli.py).
add_test(NAME train_cli
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_train_cli.py $<TARGET_FILE:moe_cli>)
set_tests_properties(train_cli PROPERTIES TIMEOUT 600)
moe_add_gtest(test_sampling)
moe_add_gtest(test_corpus)
# Runs kept safe: --overwrite, finished runs, --resume_changes, crash leftovers, SIGHUP, --ckpt_minutes.
add_test(NAME train_runs
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_train_runs.py $<TARGET_FILE:moe_cli>)
set_tests_properties(train_runs PROPERTIES TIMEOUT 300)
# The command line as a whole (typos named, paths) and `moe eval` against training's validation loss.
add_test(NAME cli
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/cli/test_cli.py $<TARGET_FILE:moe_cli>)
set_tests_properties(cli PROPERTIES TIMEOUT 300)
