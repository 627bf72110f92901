/* Fused fp32 3x3 convolutions for SRResNet on CPUs without AMX (srgan_cli/nets/simd.py).
 *
 * The fp32 counterpart of amx.c: a 3x3, stride 1 convolution of an fp32 NHWC image whose
 * 1-pixel zero border is stored (no bounds checks), with the epilogue fused: + bias,
 * per-channel PReLU, + a residual image, and stored through per-block channel offsets so
 * that a 2x pixel shuffle is only an addressing mode.
 *
 * Built with AVX2 + FMA (every x86-64 CPU since about 2013). An AVX-512 build of the same
 * blocking (12 pixels x 32 maps in 24 of its 32 registers) measured no faster on a Zen 4,
 * whose AVX-512 unit runs 512-bit FMAs as two 256-bit halves (docs/performance.md).
 *
 * Blocking: NP output pixels of one row x NV vectors of output channels (a "channel
 * block" of NV * VEC maps) in NP * NV accumulator registers. For every tap and input
 * channel: NV weight vectors are loaded once and each pixel's input value is broadcast
 * and multiplied into its NV accumulators. The weights of one channel block are packed
 * contiguously in the order the loop reads them ([block][tap][cin][NV * VEC]); a row is
 * walked in chunks of XCHUNK pixels, every channel block over one chunk before the next,
 * so the chunk's inputs (3 rows) stay in L1/L2 while the weights stream from L2.
 */
#include <immintrin.h>
#include <stdint.h>

#define VEC 8
#define NP 6
typedef __m256 vec;
#define vzero() _mm256_setzero_ps()
#define vload(p) _mm256_loadu_ps(p)
#define vstore(p, v) _mm256_storeu_ps((p), (v))
#define vbcast(p) _mm256_broadcast_ss(p)
#define vfma(a, b, c) _mm256_fmadd_ps((a), (b), (c))
#define vadd(a, b) _mm256_add_ps((a), (b))
#define vmax(a, b) _mm256_max_ps((a), (b))
#define vmin(a, b) _mm256_min_ps((a), (b))

#define NV 2
#define CB (NV * VEC) /* output channels per block */
#define XCHUNK 48

typedef struct {
    const float *in;      /* padded input: element (0, 0, 0) is the border pixel up-left of output (0, 0) */
    int64_t in_row;       /* elements per padded input row */
    int64_t cin;          /* input channels; also the input pixel stride */
    int64_t width;        /* output pixels per row */
    int64_t row0, row1;   /* output rows [row0, row1) are computed */
    const float *w;       /* packed weights [cout / CB][9][cin][CB] */
    int64_t cout;         /* output channels, a multiple of CB */
    const float *bias;    /* [cout] */
    const float *slope;   /* [cout] PReLU slopes, or NULL */
    const float *res;     /* residual for output (0, 0, channel 0), or NULL; channels contiguous */
    int64_t res_row, res_px;
    float *out;           /* output element of pixel (0, 0) before the block offsets */
    int64_t out_row, out_px;
    const int64_t *chunk_off; /* [cout / CB] element offset of each channel block */
    int64_t threads;
} conv_args;

int64_t srgan_simd_block(void) { return CB; }

/* One pixel's NV = 2 accumulators for pixel p, when the block has more than p pixels. */
#define ACC(p) vec a##p##0 = vzero(), a##p##1 = vzero();
#define FMA(p)                                                                         \
    if (np > p) {                                                                      \
        const vec xv = vbcast(ip + p * cin + j);                                       \
        a##p##0 = vfma(xv, w0, a##p##0);                                               \
        a##p##1 = vfma(xv, w1, a##p##1);                                               \
    }
#define SAVE(p)                                                                        \
    if (np > p) {                                                                      \
        vstore(acc + (p * NV) * VEC, a##p##0);                                         \
        vstore(acc + (p * NV + 1) * VEC, a##p##1);                                     \
    }
#define EACH(m) m(0) m(1) m(2) m(3) m(4) m(5)

/* np (<= NP) pixels from x0 of row h, channel block nb. Inlined with a constant np, so
 * the accumulators are named registers and the pixel loop disappears. For one kernel
 * row ky the three taps' inputs of a pixel are 3 * cin consecutive floats (the pixel and
 * its two right neighbours), read in the order the packed weights are. */
static inline __attribute__((always_inline)) void block(const conv_args *a, int64_t h,
                                                        int64_t x0, int64_t nb, const int np)
{
    const int64_t cin = a->cin, n = 3 * cin;
    EACH(ACC)
    const float *wp = a->w + nb * 9 * cin * CB;
    for (int64_t ky = 0; ky < 3; ky++) {
        const float *ip = a->in + (h + ky) * a->in_row + x0 * cin;
        for (int64_t j = 0; j < n; j++, wp += CB) {
            const vec w0 = vload(wp), w1 = vload(wp + VEC);
            EACH(FMA)
        }
    }
    float acc[NP * NV * VEC] __attribute__((aligned(64)));
    EACH(SAVE)
    const int64_t n0 = nb * CB;
    const vec zero = vzero();
    float *o = a->out + h * a->out_row + a->chunk_off[nb] + x0 * a->out_px;
    const float *r = a->res ? a->res + h * a->res_row + x0 * a->res_px + n0 : 0;
    for (int v = 0; v < NV; v++) {
        const vec b = vload(a->bias + n0 + v * VEC);
        const vec s = a->slope ? vload(a->slope + n0 + v * VEC) : zero;
        for (int p = 0; p < np; p++) {
            vec y = vadd(vload(acc + (p * NV + v) * VEC), b);
            if (a->slope)
                y = vfma(s, vmin(y, zero), vmax(y, zero));
            if (r)
                y = vadd(y, vload(r + p * a->res_px + v * VEC));
            vstore(o + p * a->out_px + v * VEC, y);
        }
    }
}

static void row(const conv_args *a, int64_t h)
{
    for (int64_t xc = 0; xc < a->width; xc += XCHUNK) {
        const int64_t xe = xc + XCHUNK < a->width ? xc + XCHUNK : a->width;
        for (int64_t nb = 0; nb < a->cout / CB; nb++) {
            int64_t x = xc;
            for (; x + NP <= xe; x += NP)
                block(a, h, x, nb, NP);
            switch (xe - x) {
#define TAIL(n) case n: block(a, h, x, nb, n); break;
            TAIL(1) TAIL(2) TAIL(3) TAIL(4) TAIL(5)
            default: break;
            }
        }
    }
}

void srgan_conv3x3_f32(const conv_args *a)
{
#pragma omp parallel for num_threads(a->threads) schedule(static)
    for (int64_t h = a->row0; h < a->row1; h++)
        row(a, h);
}

/* n dependent integer adds, 8 per loop turn (one a cycle: the measured clock of
 * srgan_cli/bench/speed.py's peak FMA rate). Returns the sum, so nothing is optimised away. */
int64_t srgan_add_chain(int64_t n)
{
    int64_t x = 0;
    for (int64_t i = 0; i < n; i += 8)
        __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\t"
                         "add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0"
                         : "+r"(x));
    return x;
}

/* The same on each of `threads` OpenMP threads at once (the clock while all cores run). */
int64_t srgan_add_chains(int64_t n, int64_t threads)
{
    int64_t total = 0;
#pragma omp parallel for num_threads(threads) reduction(+ : total) schedule(static, 1)
    for (int64_t t = 0; t < threads; t++)
        total += srgan_add_chain(n);
    return total;
}
