/* SPDX-License-Identifier: MIT */
/*
 * memspace: a guest-memory model for VMMs, emulators, device-model test
 * benches and fuzzers.  Umbrella header: include this one.
 *
 * See docs/api.md for an overview and docs/model.md for the behaviour.
 */
#ifndef MEMSPACE_MEMSPACE_H
#define MEMSPACE_MEMSPACE_H

#include "memspace/common.h"
#include "memspace/system.h"
#include "memspace/region.h"
#include "memspace/as.h"
#include "memspace/listener.h"
#include "memspace/ioeventfd.h"
#include "memspace/dirty.h"
#include "memspace/coalesced.h"
#include "memspace/mtree.h"
#include "memspace/access.h"
#include "memspace/kvm.h"
#include "memspace/topology.h" /* includes explain.h */

#define MEMSPACE_VERSION_MAJOR 0
#define MEMSPACE_VERSION_MINOR 1
#define MEMSPACE_VERSION_PATCH 0

#endif
