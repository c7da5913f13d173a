// Open MPI through dlopen: the few MPI calls Prism makes, resolved from libmpi at run time.
//
// The handle types and predefined objects below are Open MPI's ABI (mpi.h of Open MPI 3.x and 4.x):
// MPI_Comm, MPI_Datatype, MPI_Op and MPI_Request are pointers, MPI_COMM_WORLD is the address of the
// global `ompi_mpi_comm_world`, MPI_FLOAT of `ompi_mpi_float` and so on, MPI_IN_PLACE is (void *) 1,
// and MPI_Status begins with the public fields MPI_SOURCE, MPI_TAG, MPI_ERROR. MPICH's ABI differs
// (integer handles); a libmpi without these symbols is refused by prism_mpi_load.
#include "cmpi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void *handle;

// Open MPI 4.x's `struct ompi_status_public_t` (int MPI_SOURCE, MPI_TAG, MPI_ERROR, _cancelled;
// size_t _ucount), with room to spare.
typedef struct {
    int source, tag, error, cancelled;
    size_t ucount;
    char spare[64];
} status_t;

#define MPI_THREAD_SERIALIZED 2
#define MPI_IN_PLACE ((void *) 1)

static int (*p_init_thread)(int *, char ***, int, int *);
static int (*p_initialized)(int *);
static int (*p_finalize)(void);
static int (*p_abort)(handle, int);
static int (*p_comm_rank)(handle, int *);
static int (*p_comm_size)(handle, int *);
static int (*p_get_processor_name)(char *, int *);
static double (*p_wtime)(void);
static int (*p_isend)(const void *, int, handle, int, int, handle, handle *);
static int (*p_test)(handle *, int *, status_t *);
static int (*p_iprobe)(int, int, handle, int *, status_t *);
static int (*p_get_count)(const status_t *, handle, int *);
static int (*p_recv)(void *, int, handle, int, int, handle, status_t *);
static int (*p_iallreduce)(const void *, void *, int, handle, handle, handle, handle *);
static int (*p_ibcast)(void *, int, handle, int, handle, handle *);
static int (*p_ibarrier)(handle, handle *);

static handle comm_world, type_byte, type_float, op_sum;

static void *library;

#define RESOLVE(pointer, name)                                                                     \
    do {                                                                                           \
        *(void **) (&pointer) = dlsym(library, name);                                              \
        if (!pointer) {                                                                            \
            snprintf(error, (size_t) error_length,                                                 \
                     "%s has no symbol %s: Prism runs under Open MPI (3.x or 4.x) only", path, name); \
            return -1;                                                                             \
        }                                                                                          \
    } while (0)

int prism_mpi_load(char *error, int error_length) {
    if (library) return 0;
    const char *path = getenv("PRISM_LIBMPI");
    if (!path || !*path) path = "libmpi.so.40";
    // RTLD_GLOBAL: Open MPI's own plugins, which it loads with dlopen, resolve libmpi's symbols.
    library = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
    if (!library) {
        snprintf(error, (size_t) error_length, "cannot load Open MPI's %s (%s); install openmpi-bin, or set PRISM_LIBMPI to its libmpi.so",
                 path, dlerror());
        return -1;
    }
    RESOLVE(p_init_thread, "MPI_Init_thread");
    RESOLVE(p_initialized, "MPI_Initialized");
    RESOLVE(p_finalize, "MPI_Finalize");
    RESOLVE(p_abort, "MPI_Abort");
    RESOLVE(p_comm_rank, "MPI_Comm_rank");
    RESOLVE(p_comm_size, "MPI_Comm_size");
    RESOLVE(p_get_processor_name, "MPI_Get_processor_name");
    RESOLVE(p_wtime, "MPI_Wtime");
    RESOLVE(p_isend, "MPI_Isend");
    RESOLVE(p_test, "MPI_Test");
    RESOLVE(p_iprobe, "MPI_Iprobe");
    RESOLVE(p_get_count, "MPI_Get_count");
    RESOLVE(p_recv, "MPI_Recv");
    RESOLVE(p_iallreduce, "MPI_Iallreduce");
    RESOLVE(p_ibcast, "MPI_Ibcast");
    RESOLVE(p_ibarrier, "MPI_Ibarrier");
    RESOLVE(comm_world, "ompi_mpi_comm_world");
    RESOLVE(type_byte, "ompi_mpi_byte");
    RESOLVE(type_float, "ompi_mpi_float");
    RESOLVE(op_sum, "ompi_mpi_op_sum");
    return 0;
}

int prism_mpi_init(int *provided) {
    int already = 0;
    p_initialized(&already);
    if (already) {
        *provided = MPI_THREAD_SERIALIZED;
        return 0;
    }
    return p_init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, provided);
}

int prism_mpi_finalize(void) { return p_finalize(); }
void prism_mpi_abort(int code) { p_abort(comm_world, code); }
int prism_mpi_rank(int *rank) { return p_comm_rank(comm_world, rank); }
int prism_mpi_size(int *size) { return p_comm_size(comm_world, size); }

int prism_mpi_processor_name(char *name, int capacity) {
    char buffer[512];  // MPI_MAX_PROCESSOR_NAME is 256 in Open MPI
    int length = 0;
    int code = p_get_processor_name(buffer, &length);
    if (code != 0) return code;
    if (length < 0) length = 0;
    if (length > capacity - 1) length = capacity - 1;
    memcpy(name, buffer, (size_t) length);
    name[length] = 0;
    return 0;
}

double prism_mpi_wtime(void) { return p_wtime(); }

int prism_mpi_isend_bytes(const void *bytes, int count, int destination, int tag, void **request) {
    return p_isend(bytes, count, type_byte, destination, tag, comm_world, request);
}

int prism_mpi_test(void **request, int *done) {
    status_t status;
    return p_test(request, done, &status);
}

int prism_mpi_iprobe(int source, int tag, int *waiting, int *from, int *tag_out, int *count) {
    status_t status;
    memset(&status, 0, sizeof status);
    int code = p_iprobe(source, tag, comm_world, waiting, &status);
    if (code != 0 || !*waiting) return code;
    *from = status.source;
    *tag_out = status.tag;
    return p_get_count(&status, type_byte, count);
}

int prism_mpi_recv_bytes(void *bytes, int count, int source, int tag) {
    status_t status;
    return p_recv(bytes, count, type_byte, source, tag, comm_world, &status);
}

int prism_mpi_iallreduce_sum_float(float *values, int count, void **request) {
    return p_iallreduce(MPI_IN_PLACE, values, count, type_float, op_sum, comm_world, request);
}

int prism_mpi_ibcast_bytes(void *bytes, int count, int root, void **request) {
    return p_ibcast(bytes, count, type_byte, root, comm_world, request);
}

int prism_mpi_ibarrier(void **request) { return p_ibarrier(comm_world, request); }
