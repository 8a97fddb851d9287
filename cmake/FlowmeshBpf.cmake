# flowmesh_bpf_skeleton(<target> <source.bpf.c>)
#
# Compiles a CO-RE BPF program with clang -target bpf against the committed
# vmlinux.h of the host architecture, then generates its libbpf skeleton with
# `bpftool gen skeleton` into the build tree. <target> is an INTERFACE library
# whose include path holds <name>.skel.h; link it to use the skeleton.
find_program(BPF_CLANG NAMES clang clang-14 clang-15 clang-16 REQUIRED)
find_program(BPF_STRIP NAMES llvm-strip llvm-strip-14 llvm-strip-15 llvm-strip-16 REQUIRED)
find_program(BPFTOOL NAMES bpftool PATHS /usr/sbin /usr/local/sbin REQUIRED)

if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
  set(FLOWMESH_BPF_ARCH x86)
elseif(CMAKE_SYSTEM_PROCESSOR MATCHES "aarch64|arm64")
  set(FLOWMESH_BPF_ARCH arm64)
else()
  message(FATAL_ERROR "no vmlinux.h for ${CMAKE_SYSTEM_PROCESSOR}; run scripts/gen-vmlinux.sh on that architecture")
endif()

function(flowmesh_bpf_skeleton target source)
  get_filename_component(name ${source} NAME_WE)
  set(src ${CMAKE_CURRENT_SOURCE_DIR}/${source})
  set(obj ${CMAKE_CURRENT_BINARY_DIR}/${name}.bpf.o)
  set(skel ${CMAKE_CURRENT_BINARY_DIR}/${name}.skel.h)
  set(vmlinux_dir ${PROJECT_SOURCE_DIR}/bpf/vmlinux/${FLOWMESH_BPF_ARCH})
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} -g -O2 -target bpf -D__TARGET_ARCH_${FLOWMESH_BPF_ARCH}
            -Wall -Werror -I${vmlinux_dir} -I${CMAKE_CURRENT_SOURCE_DIR}
            -c ${src} -o ${obj}
    # DWARF is only for humans; the skeleton embeds the object, BTF stays.
    COMMAND ${BPF_STRIP} -g ${obj}
    DEPENDS ${src} ${CMAKE_CURRENT_SOURCE_DIR}/flowmesh.h ${vmlinux_dir}/vmlinux.h
    COMMENT "BPF ${name}.bpf.c"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name}_bpf > ${skel}.tmp
    COMMAND ${CMAKE_COMMAND} -E rename ${skel}.tmp ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}.skel.h"
    VERBATIM)
  add_custom_target(${target}_gen DEPENDS ${skel})
  add_library(${target} INTERFACE)
  add_dependencies(${target} ${target}_gen)
  target_include_directories(${target} INTERFACE ${CMAKE_CURRENT_BINARY_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  target_link_libraries(${target} INTERFACE PkgConfig::LIBBPF)
endfunction()
