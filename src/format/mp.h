/*
 * mp.h: a bounds-checked, allocation-free msgpack reader.
 *
 * Writing uses msgpack-c's packer; reading untrusted bytes uses this cursor,
 * because msgpack-c's unpacker allocates container storage from the declared
 * count before checking it against the input.  Every function returns 0 and
 * advances the cursor, or returns LS_ERR_CORRUPT and leaves it unchanged.
 * Returned pointers point into the cursor's buffer.
 */
#ifndef LS_MP_H
#define LS_MP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mp_cur {
	const uint8_t	*p;
	const uint8_t	*end;
};

enum mp_type {
	MP_NONE, MP_NIL, MP_BOOL, MP_UINT, MP_INT, MP_FLOAT, MP_STR, MP_BIN,
	MP_ARRAY, MP_MAP, MP_EXT
};

/* Type of the next object (MP_NONE at the end of the buffer). */
enum mp_type mp_peek(const struct mp_cur *);

/* Containers: *n is checked to be at most the bytes remaining. */
int mp_array(struct mp_cur *, uint32_t *n);
int mp_map(struct mp_cur *, uint32_t *n);
int mp_nil(struct mp_cur *);
int mp_bool(struct mp_cur *, bool *);
int mp_uint(struct mp_cur *, uint64_t *);
/* Signed: accepts any int or uint that fits. */
int mp_int(struct mp_cur *, int64_t *);
int mp_str(struct mp_cur *, const char **s, uint32_t *len);
int mp_bin(struct mp_cur *, const uint8_t **b, uint32_t *len);
int mp_ext(struct mp_cur *, int8_t *type, const uint8_t **b, uint32_t *len);
/* Skip one object of any kind, nested at most depth levels. */
int mp_skip(struct mp_cur *, int depth);

#endif
