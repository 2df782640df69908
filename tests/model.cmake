# The GPT model (include/moe/gpt.h): finite differences and float/double agreement, KV-cache
# inference, config validation and JSON; the PyTorch oracle through a small C++ driver.
moe_add_gtest(test_gpt_fd)
moe_add_gtest(test_gpt)
moe_add_gtest(test_generate)
set_tests_properties(test_gpt_fd test_gpt PROPERTIES TIMEOUT 600)

add_executable(gpt_oracle_tool gpt_oracle_tool.cpp)
target_link_libraries(gpt_oracle_tool PRIVATE moe)
target_include_directories(gpt_oracle_tool PRIVATE ${PROJECT_SOURCE_DIR}/src)
add_test(NAME gpt_torch_oracle
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/oracle/test_gpt.py --tool $<TARGET_FILE:gpt_oracle_tool>
                 --workdir ${CMAKE_CURRENT_BINARY_DIR}/gpt_oracle)
set_tests_properties(gpt_torch_oracle PROPERTIES TIMEOUT 600)
