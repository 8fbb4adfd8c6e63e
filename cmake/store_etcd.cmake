# The etcd backend of the datastore (src/embedded/store/etcd/): C++ code generated from
# proto/etcd/ by protoc and grpc_cpp_plugin (Debian's protobuf-compiler and
# protobuf-compiler-grpc), compiled into kiln_store_etcd with the store. gRPC stays inside this
# library (DESIGN §3): its header etcd_store.h includes neither gRPC nor protobuf.
find_program(PROTOC protoc REQUIRED)
find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

set(ETCD_PROTO_DIR ${CMAKE_SOURCE_DIR}/proto/etcd)
set(ETCD_GEN_DIR ${CMAKE_BINARY_DIR}/gen/etcd)
file(MAKE_DIRECTORY ${ETCD_GEN_DIR})
set(ETCD_GEN_SRCS
  ${ETCD_GEN_DIR}/mvccpb/kv.pb.cc
  ${ETCD_GEN_DIR}/etcdserverpb/rpc.pb.cc
  ${ETCD_GEN_DIR}/etcdserverpb/rpc.grpc.pb.cc)
add_custom_command(
  OUTPUT ${ETCD_GEN_SRCS}
         ${ETCD_GEN_DIR}/mvccpb/kv.pb.h
         ${ETCD_GEN_DIR}/etcdserverpb/rpc.pb.h
         ${ETCD_GEN_DIR}/etcdserverpb/rpc.grpc.pb.h
  COMMAND ${PROTOC} -I ${ETCD_PROTO_DIR} --cpp_out=${ETCD_GEN_DIR}
          --grpc_out=${ETCD_GEN_DIR} --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN}
          mvccpb/kv.proto etcdserverpb/rpc.proto
  DEPENDS ${ETCD_PROTO_DIR}/mvccpb/kv.proto ${ETCD_PROTO_DIR}/etcdserverpb/rpc.proto
  COMMENT "etcd v3 API: protoc + grpc_cpp_plugin")

add_library(kiln_store_etcd STATIC ${ETCD_GEN_SRCS} src/embedded/store/etcd/etcd_store.cc)
target_include_directories(kiln_store_etcd PRIVATE ${ETCD_GEN_DIR} ${GRPCPP_INCLUDE_DIRS})
# Generated code is not ours to keep warning-free.
set_source_files_properties(${ETCD_GEN_SRCS} PROPERTIES COMPILE_OPTIONS
  "-Wno-unused-parameter;-Wno-array-bounds;-Wno-stringop-overflow")
kiln_pkg_libs(ETCD_GRPC_LIBS GRPCPP PROTOBUF)
target_link_libraries(kiln_store_etcd PUBLIC kiln_store ${ETCD_GRPC_LIBS})
