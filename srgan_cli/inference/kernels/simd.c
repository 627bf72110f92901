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
#define vsub(a, b) _mm256_sub_ps((a), (b))
#define vset(x) _mm256_set1_ps(x)
#define vfnma(a, b, c) _mm256_fnmadd_ps((a), (b), (c)) /* c - a b */
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
 * Winograd F(m x m, 3x3), m = 2 or 4: each m x m output tile from a t x t input patch d
 * (t = m + 2) and the transformed weights U = G g G^T (t x t per input/output channel
 * pair, computed by simd.py): Y = A^T [ sum_c U_c (.) (B^T d_c B) ] A. The t^2
 * elementwise products summed over the input channels are t^2 small matrix products
 * (tiles x cin) (cin x cout): per output pixel 16 / 4 = 4 (m = 2) or 36 / 16 = 2.25
 * (m = 4) multiplies per channel pair instead of the direct convolution's 9.
 *   m = 2: B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1], A^T = [1 1 1 0; 0 1 -1 -1].
 *   m = 4: B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0;
 *                 0 2 -1 -2 1 0; 0 4 0 -5 0 1],
 *          A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1].
 *
 * A band of m output rows is walked in groups of NP tiles (m NP output pixels): the
 * group's patches are transformed once for every input channel (V: [t^2][NP][cin]), then
 * the t^2 products run on the same register blocking as the direct kernel (NP tiles x CB
 * maps) into M ([cout / CB][t^2][NP][CB]), which the output transform and the same
 * epilogue turn into pixels. Patches reaching past the image (heights and
 * widths that are not multiples of m, the rows below a band) read zeros, never memory
 * outside the input.
 */
#define WMAX_CIN 1024
#define TMAX 6

static const float zeros[WMAX_CIN] __attribute__((aligned(64)));

/* B^T x of a column x[0..t) (vectors of channels), into y[0..t). */
static inline __attribute__((always_inline)) void bt(const int m, const vec *x, vec *y)
{
    if (m == 2) {
        y[0] = vsub(x[0], x[2]);
        y[1] = vadd(x[1], x[2]);
        y[2] = vsub(x[2], x[1]);
        y[3] = vsub(x[1], x[3]);
    } else {
        const vec four = vset(4.0f), five = vset(5.0f), two = vset(2.0f);
        const vec d13 = vsub(x[3], x[1]), d42 = vsub(x[4], x[2]);
        y[0] = vfma(four, x[0], vfnma(five, x[2], x[4]));
        y[1] = vfnma(four, vadd(x[1], x[2]), vadd(x[3], x[4]));
        y[2] = vfma(four, vsub(x[1], x[2]), vsub(x[4], x[3]));
        y[3] = vfma(two, d13, d42);
        y[4] = vfnma(two, d13, d42);
        y[5] = vfma(four, x[1], vfnma(five, x[3], x[5]));
    }
}

/* A^T x of a column x[0..t), into y[0..m). */
static inline __attribute__((always_inline)) void at(const int m, const vec *x, vec *y)
{
    if (m == 2) {
        y[0] = vadd(vadd(x[0], x[1]), x[2]);
        y[1] = vsub(vsub(x[1], x[2]), x[3]);
    } else {
        const vec two = vset(2.0f), four = vset(4.0f), eight = vset(8.0f);
        const vec s12 = vadd(x[1], x[2]), d12 = vsub(x[1], x[2]);
        const vec s34 = vadd(x[3], x[4]), d34 = vsub(x[3], x[4]);
        y[0] = vadd(vadd(x[0], s12), s34);
        y[1] = vfma(two, d34, d12);
        y[2] = vfma(four, s34, s12);
        y[3] = vadd(vfma(eight, d34, d12), x[5]);
    }
}

/* V[k][tile][c] of the group's nt tiles, from t input rows (NULL: a row of zeros). */
static inline __attribute__((always_inline)) void wino_input(const int m, const conv_args *a,
                                                             const float *const *rows,
                                                             int64_t x0, int nt, float *V)
{
    const int t = m + 2;
    const int64_t cin = a->cin, wmax = a->width + 2; /* input pixels per row */
    for (int tile = 0; tile < nt; tile++) {
        const float *px[TMAX][TMAX];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < t; j++) {
                const int64_t x = x0 + m * tile + j;
                px[i][j] = rows[i] && x < wmax ? rows[i] + x * cin : zeros;
            }
        for (int64_t c = 0; c < cin; c += VEC) {
            vec u[TMAX][TMAX]; /* u[j][i]: B^T of column j, row i */
            for (int j = 0; j < t; j++) {
                vec col[TMAX];
                for (int i = 0; i < t; i++)
                    col[i] = vload(px[i][j] + c);
                bt(m, col, u[j]);
            }
            for (int i = 0; i < t; i++) { /* (B^T d) B: B^T along each row i */
                vec row[TMAX], v[TMAX];
                for (int j = 0; j < t; j++)
                    row[j] = u[j][i];
                bt(m, row, v);
                for (int j = 0; j < t; j++)
                    vstore(V + ((i * t + j) * NP + tile) * cin + c, v[j]);
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

/* M[nb][k][tile][CB] = sum_c V[k][tile][c] U[nb][k][c][CB] for the group's np tiles, every
 * channel block nb and k < kk: k outermost, so V[k] (NP x cin, 1.5 KB for 64 channels)
 * stays in L1 for every channel block while the rest of V (55 KB for F(4x4)) waits. */
static inline __attribute__((always_inline)) void wino_gemm(const conv_args *a, const float *V,
                                                            float *M, const int kk, const int np)
{
    const int64_t cin = a->cin, nbs = a->cout / CB;
    for (int k = 0; k < kk; k++) {
        for (int64_t nb = 0; nb < nbs; nb++) {
            EACH(ACC)
            const float *vp = V + k * NP * cin;
            const float *wp = a->w + (nb * kk + k) * cin * CB;
            for (int64_t c = 0; c < cin; c++, wp += CB, vp++) {
                const vec w0 = vload(wp), w1 = vload(wp + VEC);
                EACH(WFMA)
            }
            float *acc = M + (nb * kk + k) * NP * CB;
            EACH(SAVE)
        }
    }
}

/* Output transform of M for the group's nt tiles, channel block nb, then the epilogue:
 * output rows h .. h + nrows - 1, pixels x0 .. x0 + cols - 1. */
static inline __attribute__((always_inline)) void wino_output(const int m, const conv_args *a,
                                                              const float *M, int64_t h,
                                                              int nrows, int64_t x0, int nt,
                                                              int64_t cols, int64_t nb)
{
    const int t = m + 2;
    const int64_t n0 = nb * CB;
    const vec zero = vzero();
    for (int v = 0; v < NV; v++) {
        const vec b = vload(a->bias + n0 + v * VEC);
        const vec s = a->slope ? vload(a->slope + n0 + v * VEC) : zero;
        for (int tile = 0; tile < nt; tile++) {
            vec u[TMAX][4], y[4][4]; /* u[j][i]: A^T of column j, row i */
            for (int j = 0; j < t; j++) {
                vec col[TMAX];
                for (int i = 0; i < t; i++)
                    col[i] = vload(M + ((i * t + j) * NP + tile) * CB + v * VEC);
                at(m, col, u[j]);
            }
            for (int i = 0; i < m; i++) {
                vec row[TMAX];
                for (int j = 0; j < t; j++)
                    row[j] = u[j][i];
                at(m, row, y[i]);
            }
            for (int i = 0; i < nrows; i++)
                for (int j = 0; j < m; j++) {
                    const int64_t x = x0 + m * tile + j;
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

/* Output rows h .. h + nrows - 1 (nrows <= m). */
static inline __attribute__((always_inline)) void wino_rows(const int m, const conv_args *a,
                                                            int64_t h, int nrows, float *V,
                                                            float *M)
{
    const int t = m + 2, kk = t * t;
    const int64_t hin = a->row1 + 2; /* input rows that may be read: up to row1 + 1 */
    const float *rows[TMAX];
    for (int i = 0; i < t; i++)
        rows[i] = h + i < hin ? a->in + (h + i) * a->in_row : NULL;
    for (int64_t x0 = 0; x0 < a->width; x0 += m * NP) {
        const int64_t cols = a->width - x0 < m * NP ? a->width - x0 : m * NP;
        const int nt = (int)((cols + m - 1) / m);
        wino_input(m, a, rows, x0, nt, V);
        switch (nt) {
#define WTAIL(n) case n: wino_gemm(a, V, M, kk, n); break;
        WTAIL(1) WTAIL(2) WTAIL(3) WTAIL(4) WTAIL(5) WTAIL(6)
        default: break;
        }
        for (int64_t nb = 0; nb < a->cout / CB; nb++)
            wino_output(m, a, M + nb * kk * NP * CB, h, nrows, x0, nt, cols, nb);
    }
}

static void wino_rows2(const conv_args *a, int64_t h, int nrows, float *V, float *M)
{
    wino_rows(2, a, h, nrows, V, M);
}

static void wino_rows4(const conv_args *a, int64_t h, int nrows, float *V, float *M)
{
    wino_rows(4, a, h, nrows, V, M);
}

static float *alloc_floats(int64_t n)
{
    return aligned_alloc(64, (sizeof(float) * n + 63) / 64 * 64);
}

/* The kernel of srgan_conv3x3_f32 as Winograd F(m x m, 3x3), m = 2 or 4, with weights
 * [cout / CB][(m + 2)^2][cin][CB]; cin a multiple of VEC, at most WMAX_CIN. Returns 0, or
 * -1 when a thread's buffers could not be allocated (the output is then incomplete). */
int srgan_conv3x3_wino_f32(const conv_args *a, int64_t m)
{
    const int64_t t = m + 2, bands = (a->row1 - a->row0 + m - 1) / m;
    int failed = 0;
#pragma omp parallel num_threads(a->threads) reduction(| : failed)
    {
        float *V = alloc_floats(t * t * NP * a->cin);
        float *M = alloc_floats(t * t * NP * a->cout);
        failed = !V || !M;
#pragma omp for schedule(static)
        for (int64_t p = 0; p < bands; p++) {
            const int64_t h = a->row0 + m * p;
            const int nrows = (int)(a->row1 - h < m ? a->row1 - h : m);
            if (!V || !M)
                continue;
            if (m == 4)
                wino_rows4(a, h, nrows, V, M);
            else
                wino_rows2(a, h, nrows, V, M);
        }
        free(V);
        free(M);
    }
    return failed ? -1 : 0;
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
