# Turns a text file into a C source defining `const char NAME[]` (NUL
# terminated), so a script ships inside the binary and cannot drift from it.
# Run as: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed_text.cmake
# (Kept out of the folder's top level: activation-server/*.cmake files are
# included as target definitions.)
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" bytes "${bytes}")
file(WRITE ${OUT} "/* generated from ${IN}; do not edit */\nconst char ${NAME}[] = {\n${bytes}0x00};\n")
