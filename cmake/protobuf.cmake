# Code generation for protobuf-c, and the embedded descriptor set used by
# server reflection. Everything generated lands in ${CMAKE_BINARY_DIR}/gen.
find_program(TW_PROTOC protoc REQUIRED)
find_program(TW_PROTOC_C protoc-c REQUIRED)
set(TW_GRPC_PROTO_DIR /usr/share/grpc-proto CACHE PATH "gRPC's own .proto files (Debian grpc-proto)")
set(TW_PROTOBUF_PROTO_DIR /usr/include CACHE PATH "google/protobuf/*.proto (Debian libprotobuf-dev)")
set(TW_GEN_DIR ${CMAKE_BINARY_DIR}/gen)

# tw_protobuf_c(OUT_SRCS ROOT FILE...): generate FILE.pb-c.[ch] for each
# FILE (relative to ROOT) and append the .c paths to OUT_SRCS.
function(tw_protobuf_c out_srcs root)
  set(srcs ${${out_srcs}})
  foreach(rel ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(c ${TW_GEN_DIR}/${base}.pb-c.c)
    set(h ${TW_GEN_DIR}/${base}.pb-c.h)
    add_custom_command(
      OUTPUT ${c} ${h}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${TW_GEN_DIR}
      COMMAND ${TW_PROTOC_C} --c_out=${TW_GEN_DIR}
              -I${root} -I${TW_GRPC_PROTO_DIR} -I${TW_PROTOBUF_PROTO_DIR} ${root}/${rel}
      DEPENDS ${root}/${rel}
      COMMENT "protoc-c ${rel}"
      VERBATIM)
    list(APPEND srcs ${c})
  endforeach()
  set(${out_srcs} ${srcs} PARENT_SCOPE)
endfunction()

# tw_descriptor_set(OUT_C SYMBOL FILES...): compile every FILE (absolute
# paths; include roots given in TW_PROTO_ROOTS) into one FileDescriptorSet
# with imports, and embed it as `const unsigned char SYMBOL[]` plus
# `const size_t SYMBOL_len` in OUT_C.
function(tw_descriptor_set out_c symbol)
  set(pb ${TW_GEN_DIR}/${symbol}.pb)
  set(incs)
  foreach(r ${TW_PROTO_ROOTS})
    list(APPEND incs -I${r})
  endforeach()
  add_custom_command(
    OUTPUT ${pb}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${TW_GEN_DIR}
    COMMAND ${TW_PROTOC} --descriptor_set_out=${pb} --include_imports ${incs} ${ARGN}
    DEPENDS ${ARGN}
    COMMENT "descriptor set ${symbol}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${out_c}
    COMMAND ${CMAKE_COMMAND} -DIN=${pb} -DOUT=${out_c} -DSYMBOL=${symbol}
            -P ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    DEPENDS ${pb} ${PROJECT_SOURCE_DIR}/cmake/embed.cmake
    COMMENT "embed ${symbol}"
    VERBATIM)
endfunction()
