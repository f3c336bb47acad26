/* SHA-256 (FIPS 180-4), for the digest a native model form is stored with (checked before
 * a form is first served: a 100-tree forest's form is ~10 MB, which the portable code
 * hashes in ~50-80 ms, most of a first prediction; the x86 SHA extensions do it in ~8). */
#include "core.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SQML_SHA_NI 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROTR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void block(uint32_t state[8], const unsigned char *data) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++) {
        w[i] = (uint32_t)data[4 * i] << 24 | (uint32_t)data[4 * i + 1] << 16 |
               (uint32_t)data[4 * i + 2] << 8 | (uint32_t)data[4 * i + 3];
    }
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROTR(w[i - 15], 7) ^ ROTR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROTR(w[i - 2], 17) ^ ROTR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROTR(e, 6) ^ ROTR(e, 11) ^ ROTR(e, 25)) + ((e & f) ^ (~e & g)) +
                      K[i] + w[i];
        uint32_t t2 = (ROTR(a, 2) ^ ROTR(a, 13) ^ ROTR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
}

static void blocks_portable(uint32_t state[8], const unsigned char *data, size_t count) {
    for (size_t i = 0; i < count; i++) block(state, data + 64 * i);
}

#ifdef SQML_SHA_NI
/* The same compression with the SHA extensions: the state is kept as the (ABEF, CDGH)
 * register pair sha256rnds2 works on, each instruction doing two rounds; the message
 * schedule is sha256msg1 (sigma0 + w[i-16]), the w[i-7] term, then sha256msg2 (sigma1). */
__attribute__((target("sha,sse4.1,ssse3"))) static void blocks_sha_ni(uint32_t state[8],
                                                                       const unsigned char *data,
                                                                       size_t count) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
    __m128i cdab = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[0]), 0xB1);
    __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)&state[4]), 0x1B);
    __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
    __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
    for (size_t n = 0; n < count; n++, data += 64) {
        __m128i abef_before = abef, cdgh_before = cdgh, w[16];
        for (int t = 0; t < 16; t++) {
            if (t < 4) {
                w[t] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * t)),
                                        byte_swap);
            } else {
                __m128i x = _mm_sha256msg1_epu32(w[t - 4], w[t - 3]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(w[t - 1], w[t - 2], 4));
                w[t] = _mm_sha256msg2_epu32(x, w[t - 1]);
            }
            __m128i message = _mm_add_epi32(w[t], _mm_loadu_si128((const __m128i *)&K[4 * t]));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message);
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(message, 0x0E));
        }
        abef = _mm_add_epi32(abef, abef_before);
        cdgh = _mm_add_epi32(cdgh, cdgh_before);
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128((__m128i *)&state[0], _mm_blend_epi16(feba, dchg, 0xF0));
    _mm_storeu_si128((__m128i *)&state[4], _mm_alignr_epi8(dchg, feba, 8));
}

static int has_sha_ni(void) {
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1)) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b & (1u << 29)) != 0; /* CPUID.(EAX=7,ECX=0):EBX.SHA[bit 29] */
}
#endif

typedef void (*BlocksFunction)(uint32_t state[8], const unsigned char *data, size_t count);

/* Which compression this CPU runs; SQLITE_ML_PORTABLE_SHA256 (any value) forces the
 * portable one, for the test that compares both. */
static BlocksFunction blocks_for_this_cpu(void) {
    static BlocksFunction chosen = NULL; /* the same answer whichever thread sets it */
    if (chosen == NULL) {
        BlocksFunction blocks = blocks_portable;
#ifdef SQML_SHA_NI
        if (getenv("SQLITE_ML_PORTABLE_SHA256") == NULL && has_sha_ni()) blocks = blocks_sha_ni;
#endif
        chosen = blocks;
    }
    return chosen;
}

void sqml_sha256_hex(const void *data, size_t size, char hex[65]) {
    uint32_t state[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                         0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *bytes = (const unsigned char *)data;
    BlocksFunction blocks = blocks_for_this_cpu();
    size_t full = size / 64 * 64;
    blocks(state, bytes, full / 64);
    unsigned char tail[128];
    size_t rest = size - full;
    memset(tail, 0, sizeof tail);
    if (rest) memcpy(tail, bytes + full, rest);
    tail[rest] = 0x80;
    size_t count = rest + 9 <= 64 ? 1 : 2;
    uint64_t bits = (uint64_t)size * 8;
    for (int i = 0; i < 8; i++) tail[count * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
    blocks(state, tail, count);
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
        for (int j = 0; j < 4; j++) {
            unsigned char byte = (unsigned char)(state[i] >> (24 - 8 * j));
            hex[i * 8 + j * 2] = digits[byte >> 4];
            hex[i * 8 + j * 2 + 1] = digits[byte & 15];
        }
    }
    hex[64] = '\0';
}
