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
#include <stdlib.h>

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

/* ---------------------------------------------------------------------------------
 * Winograd F(2x2, 3x3): each 2x2 output tile from a 4x4 input patch d and the transformed
 * weights U = G g G^T (4x4 per input/output channel pair, computed by simd.py):
 * Y = A^T [ sum_c U_c (.) (B^T d_c B) ] A. The 16 elementwise products summed over the
 * input channels are 16 small matrix products (tiles x cin) (cin x cout), 2.25x fewer
 * multiplies than the direct 3x3 convolution (16 instead of 36 per tile and channel
 * pair). B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1].
 *
 * A row pair is walked in groups of NP tiles (2 NP output pixels): the group's patches
 * are transformed once for every input channel (V: [16][NP][cin], in L1), then for each
 * channel block the 16 products run on the same register blocking as the direct kernel
 * (NP tiles x CB maps) into M ([16][NP][CB]), which the output transform and the same
 * epilogue turn into pixels. Patches reaching past the image (odd heights and widths, the
 * rows below a band) read zeros, never memory outside the input.
 */
#define WMAX_CIN 1024

static const float zeros[WMAX_CIN] __attribute__((aligned(64)));

/* V[k][t][c] of the group's nt tiles, from 4 input rows (NULL: a row of zeros). */
static void wino_input(const conv_args *a, const float *rows[4], int64_t x0, int nt, float *V)
{
    const int64_t cin = a->cin, wmax = a->width + 2; /* input pixels per row */
    for (int t = 0; t < nt; t++) {
        const float *px[4][4];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) {
                const int64_t x = x0 + 2 * t + j;
                px[i][j] = rows[i] && x < wmax ? rows[i] + x * cin : zeros;
            }
        for (int64_t c = 0; c < cin; c += VEC) {
            vec d[4][4], u[4][4];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    d[i][j] = vload(px[i][j] + c);
            for (int j = 0; j < 4; j++) { /* B^T d */
                u[0][j] = _mm256_sub_ps(d[0][j], d[2][j]);
                u[1][j] = _mm256_add_ps(d[1][j], d[2][j]);
                u[2][j] = _mm256_sub_ps(d[2][j], d[1][j]);
                u[3][j] = _mm256_sub_ps(d[1][j], d[3][j]);
            }
            for (int i = 0; i < 4; i++) { /* (B^T d) B */
                vec v[4];
                v[0] = _mm256_sub_ps(u[i][0], u[i][2]);
                v[1] = _mm256_add_ps(u[i][1], u[i][2]);
                v[2] = _mm256_sub_ps(u[i][2], u[i][1]);
                v[3] = _mm256_sub_ps(u[i][1], u[i][3]);
                for (int j = 0; j < 4; j++)
                    vstore(V + ((i * 4 + j) * NP + t) * cin + c, v[j]);
            }
        }
    }
}

#define WFMA(p)                                                                        \
    if (np > p) {                                                                      \
        const vec xv = vbcast(vp + p * cin);                                           \
        a##p##0 = vfma(xv, w0, a##p##0);                                               \
        a##p##1 = vfma(xv, w1, a##p##1);                                               \
    }

/* M[k][t][CB] = sum_c V[k][t][c] U[nb][k][c][CB] for the group's np tiles. */
static inline __attribute__((always_inline)) void wino_gemm(const conv_args *a, const float *V,
                                                            int64_t nb, float *M, const int np)
{
    const int64_t cin = a->cin;
    const float *wp = a->w + nb * 16 * cin * CB;
    for (int k = 0; k < 16; k++) {
        EACH(ACC)
        const float *vp = V + k * NP * cin;
        for (int64_t c = 0; c < cin; c++, wp += CB, vp++) {
            const vec w0 = vload(wp), w1 = vload(wp + VEC);
            EACH(WFMA)
        }
        float *acc = M + k * NP * CB;
        EACH(SAVE)
    }
}

/* Output transform of M for the group's nt tiles, channel block nb, then the epilogue;
 * output row h (and h + 1 when two), pixels from x0, at most `cols` of them. */
static void wino_output(const conv_args *a, const float *M, int64_t h, int two, int64_t x0,
                        int nt, int64_t cols, int64_t nb)
{
    const int64_t n0 = nb * CB;
    const vec zero = vzero();
    for (int v = 0; v < NV; v++) {
        const vec b = vload(a->bias + n0 + v * VEC);
        const vec s = a->slope ? vload(a->slope + n0 + v * VEC) : zero;
        for (int t = 0; t < nt; t++) {
            vec m[4][4], u[2][4], y[2][2];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    m[i][j] = vload(M + ((i * 4 + j) * NP + t) * CB + v * VEC);
            for (int j = 0; j < 4; j++) { /* A^T m */
                u[0][j] = vadd(vadd(m[0][j], m[1][j]), m[2][j]);
                u[1][j] = _mm256_sub_ps(_mm256_sub_ps(m[1][j], m[2][j]), m[3][j]);
            }
            for (int i = 0; i < 2; i++) { /* (A^T m) A */
                y[i][0] = vadd(vadd(u[i][0], u[i][1]), u[i][2]);
                y[i][1] = _mm256_sub_ps(_mm256_sub_ps(u[i][1], u[i][2]), u[i][3]);
            }
            for (int i = 0; i < 1 + two; i++)
                for (int j = 0; j < 2; j++) {
                    const int64_t x = x0 + 2 * t + j;
                    if (x - x0 >= cols)
                        continue;
                    vec r = vadd(y[i][j], b);
                    if (a->slope)
                        r = vfma(s, vmin(r, zero), vmax(r, zero));
                    if (a->res)
                        r = vadd(r, vload(a->res + (h + i) * a->res_row + x * a->res_px + n0 + v * VEC));
                    vstore(a->out + (h + i) * a->out_row + a->chunk_off[nb] + x * a->out_px + v * VEC, r);
                }
        }
    }
}

/* Output rows h and h + 1 (h + 1 only when two). */
static void wino_rows(const conv_args *a, int64_t h, int two, float *V, float *M)
{
    const int64_t hin = a->row1 + 2; /* input rows that may be read: up to row1 + 1 */
    const float *rows[4];
    for (int i = 0; i < 4; i++)
        rows[i] = h + i < hin ? a->in + (h + i) * a->in_row : NULL;
    for (int64_t x0 = 0; x0 < a->width; x0 += 2 * NP) {
        const int64_t cols = a->width - x0 < 2 * NP ? a->width - x0 : 2 * NP;
        const int nt = (int)((cols + 1) / 2);
        wino_input(a, rows, x0, nt, V);
        for (int64_t nb = 0; nb < a->cout / CB; nb++) {
            switch (nt) {
#define WTAIL(n) case n: wino_gemm(a, V, nb, M, n); break;
            WTAIL(1) WTAIL(2) WTAIL(3) WTAIL(4) WTAIL(5) WTAIL(6)
            default: break;
            }
            wino_output(a, M, h, two, x0, nt, cols, nb);
        }
    }
}

/* The kernel of srgan_conv3x3_f32 with Winograd weights ([cout / CB][16][cin][CB]);
 * cin a multiple of VEC, at most WMAX_CIN. */
void srgan_conv3x3_wino_f32(const conv_args *a)
{
    const int64_t pairs = (a->row1 - a->row0 + 1) / 2;
#pragma omp parallel num_threads(a->threads)
    {
        float *V = aligned_alloc(64, sizeof(float) * 16 * NP * a->cin);
        float *M = aligned_alloc(64, sizeof(float) * 16 * NP * CB);
#pragma omp for schedule(static)
        for (int64_t p = 0; p < pairs; p++) {
            const int64_t h = a->row0 + 2 * p;
            wino_rows(a, h, h + 1 < a->row1, V, M);
        }
        free(V);
        free(M);
    }
}

int64_t srgan_wino_max_cin(void) { return WMAX_CIN; }

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
