/* The MinHash signature's inner loop (transforms/dedup/minhash.py, Permutations.signature):
 *
 *     out[j] = min(out[j], min over i of (a[j] * hv[i] + b[j]) mod 2**32)
 *
 * in uint32 arithmetic, as numpy computes it there, without the (shingles x permutations) block
 * numpy builds for it (a few MB per long document, written and read three times). The same
 * values bit for bit: unsigned 32-bit multiplication and addition wrap modulo 2**32 in C as in
 * numpy. The loop over the permutations is innermost, contiguous, so the compiler vectorises it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *minimum_affine(PyObject *self, PyObject *args) {
    Py_buffer hv, a, b, out;
    if (!PyArg_ParseTuple(args, "y*y*y*w*", &hv, &a, &b, &out)) return NULL;
    PyObject *result = NULL;
    Py_ssize_t k = a.len / 4;
    if (hv.len % 4 || a.len % 4 || b.len != a.len || out.len != a.len) {
        PyErr_SetString(PyExc_ValueError,
                        "minimum_affine: hv, a, b and out must be uint32 buffers, a, b and out of one length");
        goto done;
    }
    const uint32_t *h = hv.buf, *pa = a.buf, *pb = b.buf;
    uint32_t *po = out.buf;
    Py_ssize_t n = hv.len / 4;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint32_t x = h[i];
        for (Py_ssize_t j = 0; j < k; j++) {
            const uint32_t v = pa[j] * x + pb[j];
            po[j] = v < po[j] ? v : po[j];
        }
    }
    Py_END_ALLOW_THREADS
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&hv);
    PyBuffer_Release(&a);
    PyBuffer_Release(&b);
    PyBuffer_Release(&out);
    return result;
}

static PyMethodDef methods[] = {
    {"minimum_affine", minimum_affine, METH_VARARGS,
     "minimum_affine(hv, a, b, out): out[j] = min(out[j], min_i(a[j] * hv[i] + b[j])) in uint32"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_minhash", NULL, -1, methods};

PyMODINIT_FUNC PyInit__minhash(void) { return PyModule_Create(&module); }
