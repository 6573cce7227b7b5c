# SPDX-License-Identifier: MIT
# Parsers of the memspace tool: topology JSON and QEMU `info mtree` text.
ms_fuzz(fuzz_topology_json)
ms_fuzz(fuzz_import_mtree)
