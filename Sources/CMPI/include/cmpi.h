// Open MPI loaded at run time: a plain `prism` needs no MPI to build or run, and `mpirun -np N prism …`
// finds the library Open MPI's mpirun runs it with. The handful of calls Prism makes, through
// functions that take plain C types (the MPI handles stay inside the C file).
#ifndef PRISM_CMPI_H
#define PRISM_CMPI_H

#include <stddef.h>

/// Loads Open MPI's libmpi (`PRISM_LIBMPI` when set, else `libmpi.so.40`, Open MPI 3.x/4.x) and its
/// symbols. Returns 0, or -1 with a one-line reason in `error`.
int prism_mpi_load(char *error, int error_length);

/// MPI_Init_thread with MPI_THREAD_SERIALIZED (one thread calls MPI at a time). Returns MPI's code.
int prism_mpi_init(int *provided);
int prism_mpi_finalize(void);
/// MPI_Abort on MPI_COMM_WORLD: every process of the job ends with `code`.
void prism_mpi_abort(int code);
int prism_mpi_rank(int *rank);
int prism_mpi_size(int *size);
/// The processor (host) name, NUL-terminated, at most `capacity` bytes including the NUL.
int prism_mpi_processor_name(char *name, int capacity);
double prism_mpi_wtime(void);

/// Non-blocking byte send to `destination` with `tag`; `*request` is set for prism_mpi_test.
int prism_mpi_isend_bytes(const void *bytes, int count, int destination, int tag, void **request);
/// Tests (and, when complete, frees) a request: `*done` is 1 when it completed.
int prism_mpi_test(void **request, int *done);
/// Whether a message from `source` (-1: any) with `tag` (-1: any) is waiting: its source, tag and byte count.
int prism_mpi_iprobe(int source, int tag, int *waiting, int *from, int *tag_out, int *count);
/// Receives `count` bytes from `source` with `tag` (the message prism_mpi_iprobe found).
int prism_mpi_recv_bytes(void *bytes, int count, int source, int tag);
/// Non-blocking in-place sum of `count` floats over every process.
int prism_mpi_iallreduce_sum_float(float *values, int count, void **request);
/// Non-blocking broadcast of `count` bytes from `root`.
int prism_mpi_ibcast_bytes(void *bytes, int count, int root, void **request);
int prism_mpi_ibarrier(void **request);

#endif
