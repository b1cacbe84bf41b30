# Turns a text file into a C source defining `const char NAME[]` (NUL
# terminated), so a script ships inside the binary and cannot drift from it.
# Run as: cmake -DIN=file -DOUT=file.c -DNAME=symbol [-DARGS=header.h] -P embed_text.cmake
#
# ARGS names a C header whose `#define NAME <integer>` lines are the KEYS[]
# and ARGV[] positions of a Lua script. Each becomes `local NAME = <integer>`
# in front of the script, so C fills argv[] and Lua reads it by the same
# names, written once. They go on the script's first line, ahead of its own
# text, so the line numbers Redis reports in errors still match the file.
# (Lua allows 200 locals per function; keep such a header well below that,
# and keep ';' out of its #define lines.)
set(prefix "")
set(source "${IN}")
if(ARGS)
  string(APPEND source ", with the positions of ${ARGS}")
  file(STRINGS ${ARGS} defines REGEX "^#define[ \t]+[A-Za-z_][A-Za-z0-9_]*[ \t]+[0-9]+")
  foreach(line IN LISTS defines)
    string(REGEX REPLACE "^#define[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]+([0-9]+).*" "local \\1 = \\2 " decl "${line}")
    string(APPEND prefix "${decl}")
  endforeach()
endif()
string(HEX "${prefix}" prefix_hex)
file(READ ${IN} hex HEX)
string(PREPEND hex "${prefix_hex}")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* generated from ${source}; do not edit */\nconst char ${NAME}[] = {\n${bytes}0x00};\n")
