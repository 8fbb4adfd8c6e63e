# The eBPF data plane of the Service proxy (kiln_proxy_ebpf), included from the top-level
# CMakeLists.txt: kiln_proxy.bpf.c is compiled by clang for the BPF target against the kernel's
# UAPI headers (linux-libc-dev; no vmlinux.h/CO-RE needed for sock_addr programs), its DWARF is
# stripped (BTF stays), and `bpftool gen skeleton` turns the object into a header that embeds
# it. libbpf links statically (libbpf.a, libelf.a, libz.a from pkg-config --static).
find_program(KILN_BPF_CLANG NAMES clang clang-14 REQUIRED)
find_program(KILN_BPFTOOL bpftool PATHS /usr/sbin /sbin REQUIRED)
find_program(KILN_LLVM_STRIP NAMES llvm-strip llvm-strip-14 PATHS /usr/lib/llvm-14/bin REQUIRED)

set(KILN_EBPF_SRC ${CMAKE_SOURCE_DIR}/src/agent/proxy/ebpf)
set(KILN_EBPF_GEN ${KILN_GEN_DIR}/ebpf)
if(CMAKE_LIBRARY_ARCHITECTURE)
  set(KILN_EBPF_ARCH_INC -I/usr/include/${CMAKE_LIBRARY_ARCHITECTURE})
endif()
add_custom_command(
  OUTPUT ${KILN_EBPF_GEN}/kiln_proxy.bpf.o
  COMMAND ${CMAKE_COMMAND} -E make_directory ${KILN_EBPF_GEN}
  COMMAND ${KILN_BPF_CLANG} -target bpf -O2 -g -Wall -Werror ${KILN_EBPF_ARCH_INC}
          -c ${KILN_EBPF_SRC}/kiln_proxy.bpf.c -o ${KILN_EBPF_GEN}/kiln_proxy.bpf.o
  COMMAND ${KILN_LLVM_STRIP} -g ${KILN_EBPF_GEN}/kiln_proxy.bpf.o
  DEPENDS ${KILN_EBPF_SRC}/kiln_proxy.bpf.c ${KILN_EBPF_SRC}/kiln_proxy.h
  COMMENT "eBPF proxy programs (clang -target bpf)"
  VERBATIM)
add_custom_command(
  OUTPUT ${KILN_EBPF_GEN}/kiln_proxy.skel.h
  COMMAND sh -c "${KILN_BPFTOOL} gen skeleton ${KILN_EBPF_GEN}/kiln_proxy.bpf.o name kiln_proxy_bpf > ${KILN_EBPF_GEN}/kiln_proxy.skel.h.tmp && mv ${KILN_EBPF_GEN}/kiln_proxy.skel.h.tmp ${KILN_EBPF_GEN}/kiln_proxy.skel.h"
  DEPENDS ${KILN_EBPF_GEN}/kiln_proxy.bpf.o
  COMMENT "eBPF proxy skeleton (bpftool gen skeleton)"
  VERBATIM)

add_library(kiln_proxy_ebpf STATIC ${KILN_EBPF_SRC}/ebpf_dataplane.cc
            ${KILN_EBPF_GEN}/kiln_proxy.skel.h)
target_include_directories(kiln_proxy_ebpf PRIVATE ${KILN_EBPF_GEN})
kiln_pkg_libs(KILN_EBPF_LIBS LIBBPF)
target_link_libraries(kiln_proxy_ebpf PUBLIC kiln_common ${KILN_EBPF_LIBS})
# makeEbpfDataPlane composes the nftables data plane (kiln_proxy) for node ports; kiln_proxy in
# turn chooses this data plane: a cycle of static libraries, which CMake links fine.
target_link_libraries(kiln_proxy_ebpf PUBLIC kiln_proxy)
