/* Fused 3x3 convolutions for SRResNet on CPUs with AMX-BF16 (srgan_cli/nets/amx.py).
 *
 * One kernel: a 3x3, stride 1 convolution of a bf16 NHWC image whose 1-pixel zero border
 * is stored (so no bounds checks), with the epilogue fused: + bias, per-channel PReLU,
 * + a residual image, rounded once to bf16, and stored through per-32-channel offsets so
 * that a 2x pixel shuffle is only an addressing mode. Eager PyTorch runs each of those
 * as a separate pass over memory; here they happen while the accumulators are in cache.
 *
 * Blocking: 32 output pixels of one row x 32 output channels per step, four 16x16 fp32
 * accumulator tiles (tmm0-3), two input tiles (16 pixels x 32 input channels, read
 * straight from the image with a row stride of one pixel, tmm4-5) and two weight tiles
 * (32 input channels x 16 output channels in the pair-interleaved layout TDPBF16PS
 * expects, tmm6-7); 9 taps x cin/32 steps per block.
 */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

typedef struct {
    const uint16_t *in;   /* padded input: element (0, 0, 0) is the border pixel up-left of output (0, 0) */
    int64_t in_row;       /* elements per padded input row */
    int64_t cin;          /* input channels, a multiple of 32; also the input pixel stride */
    int64_t width;        /* output pixels per row, at least 32 */
    int64_t row0, row1;   /* output rows [row0, row1) are computed */
    const uint16_t *w;    /* packed weights [9][cin / 2][cout][2] */
    int64_t cout;         /* output channels, a multiple of 32 */
    const float *bias;    /* [cout] */
    const float *slope;   /* [cout] PReLU slopes, or NULL */
    const uint16_t *res;  /* residual for output (0, 0, channel 0), or NULL; channels contiguous */
    int64_t res_row, res_px;
    uint16_t *out;        /* output element of pixel (0, 0) before the chunk offsets */
    int64_t out_row, out_px;
    const int64_t *chunk_off; /* [cout / 32] element offset of each 32-channel chunk */
    int64_t threads;
} conv_args;

int srgan_amx_request(void)
{
    /* Linux hands out the AMX tile state only on request: ARCH_REQ_XCOMP_PERM, XTILEDATA. */
    return (int)syscall(SYS_arch_prctl, 0x1023, 18);
}

static void configure(void)
{
    tile_config c;
    memset(&c, 0, sizeof c);
    c.palette_id = 1;
    for (int i = 0; i < 8; i++) {
        c.rows[i] = 16;
        c.colsb[i] = 64;
    }
    _tile_loadconfig(&c);
}

static inline __m512 load_bf16(const uint16_t *p)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(v), 16));
}

/* A finished 32 x 32 block waiting for its epilogue. */
typedef struct {
    const float *buf;     /* [32 pixels][32 channels] fp32 accumulators */
    uint16_t *out;        /* output of its first pixel, first channel */
    const uint16_t *res;  /* residual of its first pixel, first channel, or NULL */
    __m512 b0, b1, s0, s1;
    int slope;
} pending;

static void epilogue(const conv_args *a, const pending *e, int64_t p0, int64_t p1)
{
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t p = p0; p < p1; p++) {
        __m512 v0 = _mm512_add_ps(_mm512_load_ps(e->buf + p * 32), e->b0);
        __m512 v1 = _mm512_add_ps(_mm512_load_ps(e->buf + p * 32 + 16), e->b1);
        if (e->slope) {
            v0 = _mm512_mask_mul_ps(v0, _mm512_cmp_ps_mask(v0, zero, _CMP_LT_OQ), v0, e->s0);
            v1 = _mm512_mask_mul_ps(v1, _mm512_cmp_ps_mask(v1, zero, _CMP_LT_OQ), v1, e->s1);
        }
        if (e->res) {
            const uint16_t *r = e->res + p * a->res_px;
            v0 = _mm512_add_ps(v0, load_bf16(r));
            v1 = _mm512_add_ps(v1, load_bf16(r + 16));
        }
        uint16_t *o = e->out + p * a->out_px;
        _mm256_storeu_si256((__m256i *)o, (__m256i)_mm512_cvtneps_pbh(v0));
        _mm256_storeu_si256((__m256i *)(o + 16), (__m256i)_mm512_cvtneps_pbh(v1));
    }
}

/* One output row. The epilogue of each block runs in slices between the tile
 * instructions of the next block, so the vector units work while the tile unit does. */
static void row_blocks(const conv_args *a, int64_t h, float *bufs)
{
    const int64_t cin = a->cin, cout = a->cout, kcs = cin / 32, steps = 9 * kcs;
    const int64_t astride = cin * 2, bstride = cout * 4;
    pending prev = {0}, cur = {0};
    int have_prev = 0, which = 0;
    for (int64_t x = 0; x < a->width; x += 32) {
        const int64_t w0 = x + 32 <= a->width ? x : a->width - 32;
        for (int64_t nb = 0; nb < cout / 32; nb++) {
            _tile_zero(0);
            _tile_zero(1);
            _tile_zero(2);
            _tile_zero(3);
            int64_t step = 0, done = 0;
            for (int64_t ky = 0; ky < 3; ky++) {
                const uint16_t *arow = a->in + (h + ky) * a->in_row + w0 * cin;
                for (int64_t kx = 0; kx < 3; kx++) {
                    const int64_t tap = ky * 3 + kx;
                    for (int64_t kc = 0; kc < kcs; kc++) {
                        const uint16_t *ap = arow + kx * cin + kc * 32;
                        const uint16_t *bp = a->w + ((tap * (cin / 2) + kc * 16) * cout + nb * 32) * 2;
                        _tile_loadd(4, ap, astride);
                        _tile_loadd(6, bp, bstride);
                        _tile_loadd(7, bp + 32, bstride);
                        _tile_loadd(5, ap + 16 * cin, astride);
                        _tile_dpbf16ps(0, 4, 6);
                        _tile_dpbf16ps(1, 4, 7);
                        _tile_dpbf16ps(2, 5, 6);
                        _tile_dpbf16ps(3, 5, 7);
                        if (have_prev) {
                            const int64_t upto = (++step * 32) / steps;
                            epilogue(a, &prev, done, upto);
                            done = upto;
                        }
                    }
                }
            }
            float *buf = bufs + which * 32 * 32;
            _tile_stored(0, buf, 128);
            _tile_stored(1, buf + 16, 128);
            _tile_stored(2, buf + 16 * 32, 128);
            _tile_stored(3, buf + 16 * 32 + 16, 128);
            const int64_t n0 = nb * 32;
            cur.buf = buf;
            cur.out = a->out + h * a->out_row + a->chunk_off[nb] + w0 * a->out_px;
            cur.res = a->res ? a->res + h * a->res_row + w0 * a->res_px + n0 : NULL;
            cur.b0 = _mm512_loadu_ps(a->bias + n0);
            cur.b1 = _mm512_loadu_ps(a->bias + n0 + 16);
            cur.slope = a->slope != NULL;
            if (a->slope) {
                cur.s0 = _mm512_loadu_ps(a->slope + n0);
                cur.s1 = _mm512_loadu_ps(a->slope + n0 + 16);
            }
            prev = cur;
            have_prev = 1;
            which ^= 1;
        }
    }
    if (have_prev)
        epilogue(a, &prev, 0, 32);
}

void srgan_conv3x3(const conv_args *a)
{
#pragma omp parallel num_threads(a->threads)
    {
        float bufs[2 * 32 * 32] __attribute__((aligned(64)));
        configure();
#pragma omp for schedule(static)
        for (int64_t h = a->row0; h < a->row1; h++)
            row_blocks(a, h, bufs);
        _tile_release();
    }
}
