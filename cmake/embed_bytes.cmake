# cmake -DIN=FILE -DOUT=FILE.inc -P embed_bytes.cmake: writes FILE's bytes as a C initializer
# list ("0x7f,0x45,...") for an `#include` inside braces. Being an included file, its content
# is part of what ccache hashes (an assembler .incbin's file would not be).
file(READ ${IN} hex HEX)
string(REPEAT "[0-9a-f]" 48 line)  # 24 bytes a line (CMake regexes have no {n})
string(REGEX REPLACE "(${line})" "\\1\n" hex "${hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT}.tmp "${bytes}\n")
file(RENAME ${OUT}.tmp ${OUT})
