# Fuzz targets: one per parser of outside input, each with a seed corpus in
# tests/fuzz/corpus/<target>/ (docs/fuzzing.md has the runs and their figures).
#   every build:  fuzz_<t>_replay runs the target's checks over its corpus (ctest fuzz_<t>_replay)
#   --preset fuzz (Clang, -DMOE_FUZZ=ON): fuzz_<t> is the libFuzzer binary, and ctest
#                 fuzz_<t>_smoke fuzzes it for a few seconds from the corpus; the target
#                 fuzz_all builds every fuzz_<t> (and only the library besides; scripts/test.sh)
set(MOE_FUZZ_TARGETS safetensors layer_config hf_config checkpoint routing tokenizer chat_template)
if(MOE_FUZZ)
  add_custom_target(fuzz_all)
endif()
set(MOE_FUZZ_SMOKE_SECONDS 5 CACHE STRING "Seconds of fuzzing per target in ctest's fuzz_<t>_smoke")
foreach(t IN LISTS MOE_FUZZ_TARGETS)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/fuzz_${t}.cpp)
  set(corpus ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/corpus/${t})
  add_executable(fuzz_${t}_replay ${src} ${CMAKE_CURRENT_SOURCE_DIR}/fuzz/replay.cpp)
  target_link_libraries(fuzz_${t}_replay PRIVATE moe)
  target_include_directories(fuzz_${t}_replay PRIVATE ${PROJECT_SOURCE_DIR}/src)
  target_compile_definitions(fuzz_${t}_replay PRIVATE MOE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME fuzz_${t}_replay COMMAND fuzz_${t}_replay ${corpus})
  if(MOE_FUZZ)
    add_executable(fuzz_${t} ${src})
    target_link_libraries(fuzz_${t} PRIVATE moe)
    target_include_directories(fuzz_${t} PRIVATE ${PROJECT_SOURCE_DIR}/src)
    target_compile_definitions(fuzz_${t} PRIVATE MOE_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
    target_link_options(fuzz_${t} PRIVATE -fsanitize=fuzzer)
    add_dependencies(fuzz_all fuzz_${t})
    # New inputs go to a scratch folder in the build tree, never into the checked-in corpus.
    set(scratch ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus/${t})
    file(MAKE_DIRECTORY ${scratch})
    add_test(NAME fuzz_${t}_smoke
             COMMAND fuzz_${t} -max_total_time=${MOE_FUZZ_SMOKE_SECONDS} -rss_limit_mb=2048 -timeout=10 ${scratch} ${corpus})
    set_tests_properties(fuzz_${t}_smoke PROPERTIES TIMEOUT 120)
  endif()
endforeach()
