# The trainer's parts (src/train): tokenizer, data, AdamW + schedule, progress, metrics,
# checkpoints, interrupts. Included from tests/CMakeLists.txt (MOE_PYTHON is set there).
moe_add_gtest(test_train_tokenizer)
moe_add_gtest(test_train_dataset)
moe_add_gtest(test_train_optimizer)
moe_add_gtest(test_train_progress)
moe_add_gtest(test_train_metrics)
moe_add_gtest(test_train_checkpoint)
moe_add_gtest(test_train_interrupt)

# AdamW + clip_grad_norm_ against torch.optim.AdamW (bit-identical without clipping), on the
# AVX2 path and on the scalar fallback.
add_executable(adamw_oracle_tool adamw_oracle_tool.cpp)
target_link_libraries(adamw_oracle_tool PRIVATE moe)
add_test(NAME adamw_torch_oracle
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/oracle/adamw_oracle.py --tool $<TARGET_FILE:adamw_oracle_tool>)
add_test(NAME adamw_torch_oracle_scalar
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/oracle/adamw_oracle.py --tool $<TARGET_FILE:adamw_oracle_tool>)
set_tests_properties(adamw_torch_oracle_scalar PROPERTIES ENVIRONMENT MOE_ISA=scalar)
