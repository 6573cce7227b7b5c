/* SPDX-License-Identifier: MIT */
/*
 * The access path: reading, writing and mapping guest memory by address.
 *
 * These are the calls device models, vCPU exit handlers and DMA engines
 * make, millions of times a second, from any thread, while the owner
 * thread edits the topology.  They follow QEMU's rules
 * (docs/model.md section 7, docs/access.md):
 *
 * - An access of any length at any address is split into pieces at region
 *   boundaries.  RAM pieces are copied; every other piece is dispatched to
 *   the region's ops with the piece size rules of QEMU (valid/impl sizes,
 *   alignment, the adjusted-size loop, endianness conversion).  Unassigned
 *   addresses read as 0 and drop writes with MS_TX_DECODE_ERROR.
 * - A piece that reaches an IOMMU region (MS_REGION_IOMMU) is translated
 *   by its callbacks, clamped to the IOMMU page, and continues in the
 *   target address space (region.h, docs/access.md), whose view is also
 *   loaded once per access; refused translations behave as unassigned
 *   memory.
 * - Results are ms_tx_result bit sets, OR-ed over the pieces; an access
 *   never fails with an errno and never stops at the first bad piece.
 * - Lock-free: an access looks the address up in the address space's
 *   currently published flat view inside an RCU read-side section, so it
 *   sees either the topology before a concurrent commit or the one after,
 *   never a mix, and nothing it uses is freed under it.  MMIO callbacks run
 *   inside that section, on the calling thread.
 * - Re-entrancy guard: an access that reaches an I/O device from inside
 *   one of that device's own callbacks on the same thread (directly, or
 *   through a DMA write that lands on it) is refused with
 *   MS_TX_ACCESS_ERROR and a log message instead of recursing.  A device is
 *   identified by ms_region_config.device (default: the ops' opaque).
 *
 * Context (every function here unless stated): any thread, any number of
 * threads at once, inside or outside MMIO callbacks, but not concurrently
 * with ms_as_destroy() of the same address space or ms_system_free().
 * Caller errors (NULL address space or buffer) yield MS_TX_DECODE_ERROR.
 */
#ifndef MEMSPACE_ACCESS_H
#define MEMSPACE_ACCESS_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Buffer accesses ---------------------------------------------------- */

/**
 * ms_as_read() - read @len bytes at @gpa into @buf.
 * @as:    the address space.
 * @gpa:   first guest address (addresses wrap at 2^64).
 * @attrs: transaction attributes, passed to callbacks; with attrs.memory
 *         set, pieces that are not RAM are refused (MS_TX_ACCESS_ERROR; if
 *         the first piece is refused nothing is read at all).
 * @buf:   receives the bytes; MMIO values are stored in the device's
 *         register byte order (a big-endian device's 0x11223344 reads as
 *         11 22 33 44).  Bytes of refused pieces are left untouched.
 * @len:   bytes; 0 does nothing.
 *
 * Return: MS_TX_OK or the OR of the pieces' results.
 */
MS_EXPORT ms_tx_result ms_as_read(ms_as *as, uint64_t gpa,
                                  struct ms_attrs attrs, void *buf,
                                  uint64_t len);

/**
 * ms_as_write() - write @len bytes of @buf at @gpa.
 *
 * Like ms_as_read().  Writes to RAM mark the written pages dirty for the
 * clients logging the region (dirty.h); writes to ROM are dropped with
 * MS_TX_DECODE_ERROR (use ms_as_write_rom() to load ROM contents); MMIO
 * writes matching a userspace ioeventfd signal it instead of reaching the
 * device (ioeventfd.h).
 *
 * Return: MS_TX_OK or the OR of the pieces' results.
 */
MS_EXPORT ms_tx_result ms_as_write(ms_as *as, uint64_t gpa,
                                   struct ms_attrs attrs, const void *buf,
                                   uint64_t len);

/**
 * ms_as_rw() - ms_as_write() if @is_write, else ms_as_read().
 * Return: as those.
 */
MS_EXPORT ms_tx_result ms_as_rw(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                void *buf, uint64_t len, bool is_write);

/**
 * ms_as_fill() - write @len copies of @byte at @gpa (in chunks of 512
 * bytes, each an ms_as_write()).
 * Return: the OR of the chunks' results.
 */
MS_EXPORT ms_tx_result ms_as_fill(ms_as *as, uint64_t gpa,
                                  struct ms_attrs attrs, uint8_t byte,
                                  uint64_t len);

/**
 * ms_as_write_rom() - loader write: store @len bytes of @buf at @gpa into
 * RAM, ROM, RAM devices and ROM devices in ROMD mode, ignoring read-only
 * flags (firmware loading).  Pieces landing elsewhere are skipped silently.
 * Pages written are marked dirty as for ms_as_write().
 *
 * Return: MS_TX_OK always (QEMU's rule), except MS_TX_DECODE_ERROR for a
 * NULL @as or @buf.
 */
MS_EXPORT ms_tx_result ms_as_write_rom(ms_as *as, uint64_t gpa,
                                       struct ms_attrs attrs, const void *buf,
                                       uint64_t len);

/**
 * ms_as_access_valid() - would an access of @len bytes at @gpa pass every
 * region's validity rules (sizes, alignment, accepts())?  RAM pieces are
 * always valid; holes never are.  Calls accepts() callbacks; nothing else
 * happens.
 *
 * Return: true if every piece is valid (also for @len 0).
 */
MS_EXPORT bool ms_as_access_valid(ms_as *as, uint64_t gpa, uint64_t len,
                                  bool is_write, struct ms_attrs attrs);

/* ---- Fixed-size loads and stores -----------------------------------------
 *
 * One access of exactly 1, 2, 4 or 8 bytes, never split: an aligned or
 * unaligned load/store when the whole access is RAM, otherwise one dispatch
 * of that size to the region that decodes @gpa (its validity rules apply,
 * and QEMU's quirk too: an access that starts in RAM but runs past the end
 * of that RAM range reads 0 / drops the write with MS_TX_DECODE_ERROR).
 * _le/_be give the byte order of the value; the unsuffixed ones use the
 * target's (ms_system_config.big_endian).  @res, if not NULL, receives the
 * result; a failed load returns 0 (or what the device returned).
 * Unlike buffer accesses, attrs.memory is not checked (QEMU's rule).
 */
MS_EXPORT uint8_t ms_as_ldub(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                             ms_tx_result *res);
MS_EXPORT uint16_t ms_as_lduw(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                              ms_tx_result *res);
MS_EXPORT uint16_t ms_as_lduw_le(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                 ms_tx_result *res);
MS_EXPORT uint16_t ms_as_lduw_be(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                 ms_tx_result *res);
MS_EXPORT uint32_t ms_as_ldl(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                             ms_tx_result *res);
MS_EXPORT uint32_t ms_as_ldl_le(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                ms_tx_result *res);
MS_EXPORT uint32_t ms_as_ldl_be(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                ms_tx_result *res);
MS_EXPORT uint64_t ms_as_ldq(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                             ms_tx_result *res);
MS_EXPORT uint64_t ms_as_ldq_le(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                ms_tx_result *res);
MS_EXPORT uint64_t ms_as_ldq_be(ms_as *as, uint64_t gpa, struct ms_attrs attrs,
                                ms_tx_result *res);

/* Stores: same rules; the result is returned. */
MS_EXPORT ms_tx_result ms_as_stb(ms_as *as, uint64_t gpa, uint8_t val,
                                 struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stw(ms_as *as, uint64_t gpa, uint16_t val,
                                 struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stw_le(ms_as *as, uint64_t gpa, uint16_t val,
                                    struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stw_be(ms_as *as, uint64_t gpa, uint16_t val,
                                    struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stl(ms_as *as, uint64_t gpa, uint32_t val,
                                 struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stl_le(ms_as *as, uint64_t gpa, uint32_t val,
                                    struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stl_be(ms_as *as, uint64_t gpa, uint32_t val,
                                    struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stq(ms_as *as, uint64_t gpa, uint64_t val,
                                 struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stq_le(ms_as *as, uint64_t gpa, uint64_t val,
                                    struct ms_attrs attrs);
MS_EXPORT ms_tx_result ms_as_stq_be(ms_as *as, uint64_t gpa, uint64_t val,
                                    struct ms_attrs attrs);

/* ---- Mapping for DMA ------------------------------------------------------
 *
 * ms_as_map() returns a host pointer to guest memory: directly into the RAM
 * block when the range is RAM that can be accessed directly in that
 * direction (the mapping then extends over following ranges of the same
 * region at contiguous offsets), otherwise a bounce buffer.  By default
 * bounce buffers follow QEMU 7.2: one per system at a time, at most one
 * target page long; while it is taken other non-RAM maps fail (NULL,
 * length 0), and "map clients" can ask to be told when it is free again.
 * An address space given a budget with ms_as_set_bounce_budget() follows
 * QEMU's later rule instead: any number of concurrent bounce buffers whose
 * sizes add up to at most the budget.
 */

/**
 * struct ms_map - one mapping; caller storage, filled by ms_as_map().
 * @host: the pointer returned (NULL if nothing is mapped).
 * @len:  bytes mapped.
 * The other fields are private.
 */
struct ms_map {
    void *host;
    uint64_t len;
    /* Private. */
    ms_as *as_;
    ms_region *mr_;   /* direct: the pinned region */
    uint64_t offset_; /* direct: region offset of @host */
    uint64_t gpa_;    /* bounce: guest address */
    bool is_write_;
    bool bounce_;
    bool budget_;   /* bounce: taken from the address space's budget */
    uint8_t dirty_; /* direct write: the clients to mark at unmap */
};

/**
 * ms_as_map() - map @*len bytes at @gpa for DMA.
 * @len:      in: bytes wanted; out: bytes mapped (0 on failure).
 * @is_write: the device will write (the guest memory is the destination).
 * @attrs:    attributes of the translation (a bounce buffer is filled with
 *            a read using unspecified attributes, as in QEMU 7.2, or with
 *            @attrs in an address space with a bounce budget, as later
 *            QEMU does).
 * @map:      receives the mapping; pass it to ms_as_unmap().
 *
 * The region behind a direct mapping stays allocated until ms_as_unmap()
 * even if the owner thread removes and frees it meanwhile (the memory is
 * then no longer guest-visible).  A bounce buffer for reading is filled at
 * map time; one for writing is written back at unmap time.
 *
 * Return: the host pointer (also in @map->host), or NULL with @*len = 0
 * for @*len 0, NULL arguments, or when the bounce buffer is taken (budget:
 * used up) or cannot be allocated.  A bounce buffer gets at most one
 * target page (budget: at most what is left of it); @*len says how much.
 */
MS_EXPORT void *ms_as_map(ms_as *as, uint64_t gpa, uint64_t *len, bool is_write,
                          struct ms_attrs attrs, struct ms_map *map);

/**
 * ms_as_set_bounce_budget() - let @as have concurrent bounce buffers.
 * @bytes: the most bytes of bounce buffers @as may have at once (QEMU's
 *         max-bounce-buffer-size, whose default is 4096); 0 goes back to
 *         the system's single buffer (QEMU 7.2, the default).
 *
 * Buffers already mapped keep counting against the budget they came from
 * until they are unmapped.
 *
 * Context: any thread.  Return: 0; -EINVAL for a NULL @as.
 */
MS_EXPORT MS_WUR int ms_as_set_bounce_budget(ms_as *as, uint64_t bytes);

/**
 * ms_as_bounce_budget() - the budget set on @as (0: the system's single
 * buffer; also for NULL).
 */
MS_EXPORT uint64_t ms_as_bounce_budget(const ms_as *as);

/**
 * ms_as_unmap() - end a mapping.
 * @access_len: bytes actually accessed from the start (clamped to
 *              @map->len): a write mapping marks them dirty (direct) or
 *              writes them back to guest memory (bounce buffer).
 *
 * Releasing a bounce buffer calls the map clients waiting for it.  The
 * address space of the mapping must still exist.  @map is cleared, so a
 * second unmap does nothing.
 *
 * Context: any thread (not necessarily the one that mapped).
 */
MS_EXPORT void ms_as_unmap(struct ms_map *map, uint64_t access_len);

/**
 * struct ms_map_client - asks to be told when a bounce buffer is released.
 * @notify: called once, then the client is unregistered; runs on the thread
 *          that released the bounce buffer the client waits for (or
 *          registered the client); it may call ms_as_map() and
 *          ms_map_client_register().  Another thread may take the buffer
 *          first: the next map may still fail (register again then).
 * @opaque: passed to @notify.
 * @as:     optional: the address space the client maps in.  If it has a
 *          bounce budget, the client waits for that budget; otherwise (or
 *          NULL) for the system's single buffer.
 * The other fields are private; zero-initialise.
 */
struct ms_map_client {
    void (*notify)(void *opaque);
    void *opaque;
    ms_as *as;
    /* Private. */
    struct ms_map_client *next_;
    bool registered_;
};

/**
 * ms_map_client_register() - call @c->notify once the bounce buffer @c
 * waits for is released (the system's single buffer, or some of
 * @c->as's budget): at once, before returning and without registering, if
 * it is free now.  Every client waiting for a buffer is called each time
 * that buffer is released.
 *
 * Return: 0; -EINVAL for NULL arguments, a NULL @notify, or @c->as of
 * another system; -EEXIST if @c is already registered.
 */
MS_EXPORT MS_WUR int ms_map_client_register(ms_system *sys,
                                            struct ms_map_client *c);

/**
 * ms_map_client_unregister() - withdraw @c.
 *
 * Return: 0; -EINVAL for NULL arguments; -ENOENT if @c is not registered
 * (it may have been notified already, possibly still running on another
 * thread).
 */
MS_EXPORT int ms_map_client_unregister(ms_system *sys, struct ms_map_client *c);

#ifdef __cplusplus
}
#endif

#endif
