# Text (src/text): Hugging Face tokenizers. Included from tests/CMakeLists.txt (MOE_PYTHON is set there).
moe_add_gtest(test_hf_tokenizer)
# Against independent implementations: tokenizers.js (tests/node, installed by scripts/setup.sh)
# and SentencePiece, on every real tokenizer in ../shared/data/tokenizers.
add_test(NAME tokenizer_oracle
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/text/test_tokenizer_oracle.py $<TARGET_FILE:moe_cli>)
set_tests_properties(tokenizer_oracle PROPERTIES TIMEOUT 300)
moe_add_gtest(test_chat_template)
# Chat templates against python3-jinja2 set up as transformers sets it up.
add_test(NAME chat_template_oracle
         COMMAND ${MOE_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/text/test_chat_template_oracle.py $<TARGET_FILE:moe_cli>)
set_tests_properties(chat_template_oracle PROPERTIES TIMEOUT 300)
