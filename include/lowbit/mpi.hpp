// lowbit/mpi.hpp: calibration and quantization-aware training across MPI ranks. When the
// calibration set or the QAT batch is split over processes, every rank must end with the same
// observer state and qparams - and, wherever the mathematics allows, with exactly the state one
// process would have reached on all the data. (PyTorch's DDP does not synchronise observers:
// each rank calibrates on its shard and exports different qparams.)
//
// An optional adapter: it is compiled only when <mpi.h> is on the include path (link CMake's
// MPI::MPI_CXX); without it this header declares nothing and LOWBIT_HAS_MPI is 0. Nothing else
// in lowbit includes it. It sits at the adapter layer: observers, quant; hosted C++ (std::vector,
// std::string, std::function, heap copies of observers).
//
//   // calibration: each rank observes its shard, then one call per observer
//   lowbit::percentile_observer<lowbit::scheme<lowbit::s8, lowbit::symmetry::symmetric>> obs;
//   for (auto& batch : my_shard) obs.observe(batch);
//   lowbit::mpi::allreduce(MPI_COMM_WORLD, obs);        // every rank: the state of all shards
//   lowbit::qparams qp = *obs.qparams();                // the same bits on every rank
//
//   // data-parallel QAT: register once, one call per step (after backward, before the update)
//   lowbit::mpi::qat_sync sync(MPI_COMM_WORLD);
//   sync.add(act_fq).add(weight_lsq).add(pact).add_gradient(my_weight_grads);
//   for (...) { forward(); backward(); sync.step(); optimizer_update(); }
//
// ---- allreduce(comm, observer): what every rank ends with -------------------------------------
// A collective: every rank of `comm` calls it with an observer of the same type and
// configuration. Every rank ends with the same state (save() bytes equal on every rank), so the
// same qparams. Reductions never depend on the MPI library's reduction order: floats are combined
// in rank order by lowbit's code (or with exact integer sums / max), so the bits do not change with
// the MPI implementation, the network or the number of ranks where the result is exact.
//
//   observer                                  how                               result
//   minmax_observer, per tensor               state in the header record,       exact: == one process
//                                             merge() in rank order              that saw all the data
//   per_channel_minmax_observer               MPI_MAX of (-mins, maxs)          exact
//   percentile / mse / entropy observers      common exponent (max), rebin      exact (integer counts)
//     (exact_histogram)                       locally, MPI_SUM of uint64 counts
//   fixed_qparams_observer                    header record, merge()            exact (counts)
//   moving_average_minmax_observer            header record, merge() in rank    the batch-weighted mean
//                                             order                              of the ranks' ranges
//   per_channel_moving_average_minmax_obs.    allgather of ranges, merge()'s    idem, per channel
//                                             weighted mean in rank order
//   histogram_observer (torch's)              allgather of save() bytes,        merge() in rank order
//                                             merge() in rank order
//   any other observer (value type with       allgather of save() bytes,        merge() in rank order
//     save / load / merge / reset)            merge() in rank order
//
// Exact means: for any split of the batches over the ranks (uneven, empty shards), the state
// (save() bytes, including count and batches) and qparams equal those of one observer that
// observed every batch. Not exact, by nature:
//   - moving averages depend on the order of the batches: no reduction can reproduce one
//     process's average over the concatenated shards. What IS reproducible: every rank gets the
//     same bits, equal to the library's merge() of the ranks' observers in rank order
//     (lowbit/observers/minmax.hpp: batch-weighted mean), whatever the MPI library. (In QAT the
//     ranges are synchronised every step instead, which is exact: see qat_sync below.)
//   - histogram_observer re-bins approximately when its range grows, so its counts depend on the
//     batch order; its merge() treats another histogram as one more batch. The result equals
//     one process when no rank's range ever grew after its first batch and all ranks share that
//     range (e.g. every shard's first batch holds the global min and max), and every bin stays
//     below 2^24: then merge is the bin-wise float sum of exact integer counts. For exactly
//     shardable histogram calibration use percentile / mse / entropy observers (exact_histogram).
// exchange_report::exact says whether the result is known to be exact: always for the exact
// rows; for the others only when at most one rank had observed anything.
//
// Bytes per rank per call (sizes of the buffers given to MPI: what a rank sends and receives;
// the wire traffic inside MPI depends on its algorithms). p ranks, C channels, B bins, S =
// save() size. Every call starts with one MPI_Allgather of a 176-byte record per rank (type,
// configuration tag, state size, statistics, a local error, and states up to 64 bytes inline):
//
//   observer                          sent             received          2048 bins / 64 ch, p = 4
//   minmax / moving average /         176              176 p             176 / 704
//     fixed_qparams (S = 44)
//   per-channel minmax                176 + 8 C        176 p + 8 C       688 / 1216
//   per-channel moving average        176 + 8 C        176 p + 8 C p     688 / 2752
//   percentile / mse / entropy        176 + 8 B        176 p + 8 B       16560 / 17088
//   histogram_observer                176 + 44 + 4 B   (220 + 4 B) p     8412 / 33648
//   other, S > 64                     176 + S          (176 + S) p
// exchange_report gives the numbers of each call.
//
// ---- configuration checking: an error on every rank, never a hang ------------------------------
// The first collective of every call has a fixed size, whatever the observer, so it cannot
// hang or truncate when ranks disagree. Each record carries the observer's kind, config() tag
// (the hash of scheme, quant range, eps, channels, bins, mode, averaging constant, method
// options), state size, and a local error (e.g. a per-channel observer whose state buffer is too
// small, which save() refuses). If any rank failed locally or any of these differs from rank 0's,
// EVERY rank gets a lowbit error naming the argument, the first differing rank and both values,
// e.g.
//   lowbit: invalid argument: argument 'observer.config()' = 0x5b1e0c2d on rank 2 of 4 differs
//   from rank 0's 0x9e3f4a10 in lowbit::mpi::allreduce: every rank's observer must have the same
//   configuration (...)
// and no further collective is started, so the ranks leave the call together. (Calling the
// function on only some ranks, or with different communicators, is a program error MPI cannot
// detect: it blocks, as any collective.)
//
// ---- errors ------------------------------------------------------------------------------------
// As the rest of lowbit: with exceptions a failure throws lowbit::mpi::error (a lowbit::error, so
// a std::invalid_argument) whose what() is the full message; status() gives argument, value and
// expectation. With LOWBIT_NO_EXCEPTIONS the functions return the status instead (the same on
// every rank). A failed MPI call becomes an error naming the call and MPI's error string
// (argument = "MPI_Allgather" ..., value = the MPI error code) - but only if the communicator's
// error handler returns errors: MPI's default, MPI_ERRORS_ARE_FATAL, aborts inside the call. Set
// MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN) to see them. MPI must be initialised (checked:
// an error otherwise) and comm an intracommunicator.
//
// ---- data-parallel QAT: qat_sync ----------------------------------------------------------------
// Register once (the same modules in the same order on every rank), then call step() once per
// training step, after backward and before the optimizer update. One step does:
//   gradients: every registered gradient (lsq_quantizer's dscale, dzero_point, dlog_scale;
//     lsq_channel_quantizer's dscales, dzero_points; pact_quantizer's dalpha; any float buffer
//     given to add_gradient, e.g. the model's weight gradients) becomes the mean over ranks
//     f32((g_0 + g_1 + ... + g_{p-1}) / p), the sum in double in rank order (or the sum itself with
//     gradient_reduction::sum). Same bits on every rank, so identical optimizer updates keep the
//     parameters identical. It is computed as a reduce-scatter (MPI_Alltoallv: rank k sums slice
//     k in rank order) + MPI_Allgatherv, so each rank sends and receives about 2 x 4 n bytes for n
//     floats, not 4 n p.
//   ranges: every registered fake_quantize module whose observer is a min/max or moving-average
//     observer (per tensor or per channel) gets, on every rank, the range
//         min over the ranks that observed since the last step of their running min, max of max
//     and the qparams recomputed from it (fake_quantize::update_qparams). count grows by the
//     elements all ranks observed, batches by the largest number of batches one rank observed.
//     A module no rank observed (frozen, observer disabled) is left alone.
// What is exact, with the ranks starting a step from the same state (which step() keeps):
//   - ranges: if each rank observed at most one batch per module since the last step, the
//     synchronised state equals, bit for bit, one process that observed the concatenation of
//     that step's batches (any sizes, empty ones included) - for MinMax AND moving-average
//     observers. Why for the moving average: the update m' = f32(m + f32(c * f32(b - m))) is a
//     composition of correctly rounded monotone operations, so it is monotone in the batch's
//     minimum b, hence min_r m'(b_r) = m'(min_r b_r), and min_r b_r is the concatenated batch's
//     minimum (likewise max). With several batches per rank per step (gradient accumulation)
//     MinMax stays exact (min is associative) but a moving average does not
//     (step_report::ranges_exact says which happened); every rank still gets the same bits.
//     The forward of the step itself used each rank's local qparams: a fully single-process-
//     equivalent forward would need the global batch range before fake-quantizing, i.e. a
//     collective inside every forward.
//   - gradients: the per-element terms are computed by each rank exactly as one process would
//     (they depend on the element, the parameters and dy only), so the mean is
//     f32((sum over ranks of f32(rank partial sum)) / p); one process gets f32(total sum). They
//     agree bit for bit when those float sums are exact (e.g. dyadic data: tests/mpi), and in
//     general up to the float rounding of the partial sums (relative 2^-24 per rank). In
//     mathematics: the sum equals the gradient of the summed loss over the concatenated batch
//     (any shard sizes); the mean equals DDP's gradient of the global mean loss when each rank
//     takes the mean over its n local examples and every rank has the same n. LSQ's grad scaling
//     1 / sqrt(numel * qmax) uses each rank's local numel (as torch DDP does); it is not the
//     concatenated batch's factor, so compare with grad_scaling off.
// Bytes per step per rank: the 176-byte record allgather (176 sent, 176 p received); for the
// ranges an MPI_Allgather of 40 + 8 C bytes per module (C = 1 per tensor), p times that received;
// for n gradient floats 4 (n + n_r) sent and 4 (p n_r + n) received, n_r = n / p rounded up or
// down (rank r's slice). step_report gives the numbers.
#ifndef LOWBIT_MPI_HPP
#define LOWBIT_MPI_HPP

#if defined(__has_include)
#if __has_include(<mpi.h>)
#define LOWBIT_DETAIL_MPI_HEADER 1
#endif
#endif

#if !defined(LOWBIT_DETAIL_MPI_HEADER)
#define LOWBIT_HAS_MPI 0
#else
#define LOWBIT_HAS_MPI 1

#include <mpi.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <new>
#include <string>
#include <utility>
#include <vector>

#include "core/span.hpp"
#include "core/status.hpp"
#include "observers/calibration_methods.hpp"
#include "observers/fixed_qparams.hpp"
#include "observers/histogram.hpp"
#include "observers/minmax.hpp"
#include "observers/observer.hpp"
#include "observers/per_channel_minmax.hpp"
#include "observers/state.hpp"
#include "quant/fake_quantize.hpp"
#include "quant/learnable.hpp"
#include "quant/pact.hpp"

namespace lowbit {
namespace mpi {

#if !LOWBIT_NO_EXCEPTIONS
/// What lowbit::mpi throws: a lowbit::error (status() as usual) with the full message, which
/// names ranks and values that a status's static strings cannot.
class error : public ::lowbit::error {
public:
    error(const ::lowbit::status& s, std::string message) : ::lowbit::error(s), m_message(std::move(message)) {}
    const char* what() const noexcept override { return m_message.c_str(); }

private:
    std::string m_message;
};
#endif

/// What one exchange did: how, how many bytes this rank handed to MPI and got back, and
/// whether the result is known to equal one process that observed all the data.
struct exchange_report {
    const char* method = "";
    std::size_t ranks = 1;
    std::size_t bytes_sent = 0;      ///< send buffers of this rank's MPI calls
    std::size_t bytes_received = 0;  ///< receive buffers of this rank's MPI calls
    bool exact = true;
};

/// What one qat_sync::step() did.
struct step_report {
    std::size_t ranks = 1;
    std::size_t bytes_sent = 0;
    std::size_t bytes_received = 0;
    std::size_t gradient_values = 0;  ///< floats reduced
    std::size_t ranges_updated = 0;   ///< fake_quantize modules some rank had observed with
    bool ranges_exact = true;         ///< false if a moving-average module was observed twice on a rank
};

/// How qat_sync and allreduce_floats combine per-rank values (in double, in rank order, rounded once).
enum class gradient_reduction : std::uint8_t {
    mean = 0,  ///< f32(sum / p): DDP's convention
    sum = 1,   ///< f32(sum)
};

namespace detail {

constexpr float inf_f = std::numeric_limits<float>::infinity();

/// Fails with a status and a full message (thrown as lowbit::mpi::error with exceptions).
inline status fail(errc code, const char* argument, double value, const char* expected, const std::string& message) {
    const status s{code, argument, value, expected};
#if !LOWBIT_NO_EXCEPTIONS
    throw ::lowbit::mpi::error(s, message);
#else
    (void)message;
    return s;
#endif
}

/// The error of a failed MPI call: its name, its code and MPI's text for it.
inline status call_failed(const char* call, int rc) {
    char text[MPI_MAX_ERROR_STRING + 1] = {};
    int len = 0;
    if (MPI_Error_string(rc, text, &len) != MPI_SUCCESS) std::snprintf(text, sizeof text, "no error string");
    char code[32];
    std::snprintf(code, sizeof code, "%d", rc);
    return fail(errc::invalid_argument, call, rc,
                "the MPI call failed (lowbit sees MPI errors when the communicator's error handler is "
                "MPI_ERRORS_RETURN)",
                std::string("lowbit: MPI error: ") + call + " returned " + code + " (" + text + ")");
}

#define LOWBIT_DETAIL_MPI_CALL(fn, ...)                                                   \
    do {                                                                                  \
        const int lowbit_detail_rc_ = fn(__VA_ARGS__);                                    \
        if (lowbit_detail_rc_ != MPI_SUCCESS) return ::lowbit::mpi::detail::call_failed(#fn, lowbit_detail_rc_); \
    } while (0)

/// Runs f (returning a status) and turns a thrown lowbit::error or bad_alloc into a status, so
/// that a rank whose local preparation fails still takes part in the exchange that tells the
/// other ranks.
template <class F>
status capture(F&& f) {
#if !LOWBIT_NO_EXCEPTIONS
    try {
        return f();
    } catch (const ::lowbit::error& e) {
        return e.status();
    } catch (const std::bad_alloc&) {
        return status{errc::overflow, "memory", 0.0, "allocation failed"};
    }
#else
    return f();
#endif
}

struct comm_info {
    int rank = 0;
    int size = 1;
};

/// MPI initialised and not finalised, comm a non-null intracommunicator.
inline status check_comm(MPI_Comm comm, comm_info& ci) {
    int init = 0, fin = 0;
    LOWBIT_DETAIL_MPI_CALL(MPI_Initialized, &init);
    LOWBIT_DETAIL_MPI_CALL(MPI_Finalized, &fin);
    if (!init || fin)
        return fail(errc::invalid_argument, "MPI_Initialized", init,
                    "MPI must be initialised (MPI_Init) and not finalised",
                    "lowbit: invalid argument: lowbit::mpi needs MPI initialised (MPI_Init) and not finalised");
    if (comm == MPI_COMM_NULL)
        return fail(errc::invalid_argument, "comm", 0, "must not be MPI_COMM_NULL",
                    "lowbit: invalid argument: argument 'comm' = MPI_COMM_NULL: must be a communicator");
    int inter = 0;
    LOWBIT_DETAIL_MPI_CALL(MPI_Comm_test_inter, comm, &inter);
    if (inter)
        return fail(errc::invalid_argument, "comm", 1, "must be an intracommunicator",
                    "lowbit: invalid argument: argument 'comm' is an intercommunicator: lowbit::mpi needs an "
                    "intracommunicator");
    LOWBIT_DETAIL_MPI_CALL(MPI_Comm_rank, comm, &ci.rank);
    LOWBIT_DETAIL_MPI_CALL(MPI_Comm_size, comm, &ci.size);
    return {};
}

inline std::size_t usize(int v) noexcept { return static_cast<std::size_t>(v); }

/// Bytes handed to MPI by one rank.
struct traffic {
    std::size_t sent = 0;
    std::size_t received = 0;
};

// ---- the record every call starts with ---------------------------------------------------------

enum class op_code : std::uint16_t { allreduce_observer = 1, allreduce_floats = 2, qat_step = 3 };

constexpr const char* op_name(std::uint16_t op) noexcept {
    return op == 1   ? "lowbit::mpi::allreduce"
           : op == 2 ? "lowbit::mpi::allreduce_floats"
           : op == 3 ? "lowbit::mpi::qat_sync::step"
                     : "an unknown lowbit::mpi function";
}

constexpr std::uint32_t record_magic = 0x504D424Cu;  // "LBMP"
constexpr std::uint16_t record_version = 1;
constexpr std::size_t record_size = 176;
constexpr std::size_t record_argument_size = 40;
constexpr std::size_t inline_state_size = 64;

/// One rank's description of its part in a call (serialised little-endian, record_size bytes).
struct record {
    std::uint32_t magic = record_magic;
    std::uint16_t version = record_version;
    std::uint16_t op = 0;
    std::uint16_t kind = 0;    ///< observer_kind (allreduce), 0 otherwise
    std::uint16_t code = 0;    ///< errc of a local failure, 0 = ok
    std::uint32_t config = 0;  ///< config() tag / registration hash / reduction
    std::uint64_t size = 0;    ///< state_size() / range bytes / value count
    std::uint64_t aux = 0;     ///< gradient floats (qat_step)
    float min = inf_f;
    float max = -inf_f;
    std::uint64_t count = 0;
    std::uint64_t batches = 0;
    std::int32_t exponent = 0;  ///< exact_histogram's bin exponent
    double value = 0.0;         ///< value of a local failure
    char argument[record_argument_size] = {};
    std::uint8_t state[inline_state_size] = {};

    void set_failure(const status& s) noexcept {
        code = static_cast<std::uint16_t>(s.code);
        value = s.value;
        std::snprintf(argument, sizeof argument, "%s", s.argument);
    }

    void write(std::uint8_t* out) const noexcept {
        state_writer w{span<std::uint8_t>(out, record_size)};
        w.u32(magic);
        w.u16(version);
        w.u16(op);
        w.u16(kind);
        w.u16(code);
        w.u32(config);
        w.u64(size);
        w.u64(aux);
        w.f32(min);
        w.f32(max);
        w.u64(count);
        w.u64(batches);
        w.i32(exponent);
        w.u32(0);
        w.u64(__builtin_bit_cast(std::uint64_t, value));
        for (char c : argument) w.u8(static_cast<std::uint8_t>(c));
        for (std::uint8_t b : state) w.u8(b);
    }

    static record read(const std::uint8_t* in) noexcept {
        state_reader r{span<const std::uint8_t>(in, record_size)};
        record x;
        x.magic = r.u32();
        x.version = r.u16();
        x.op = r.u16();
        x.kind = r.u16();
        x.code = r.u16();
        x.config = r.u32();
        x.size = r.u64();
        x.aux = r.u64();
        x.min = r.f32();
        x.max = r.f32();
        x.count = r.u64();
        x.batches = r.u64();
        x.exponent = r.i32();
        (void)r.u32();
        x.value = __builtin_bit_cast(double, r.u64());
        for (char& c : x.argument) c = static_cast<char>(r.u8());
        x.argument[record_argument_size - 1] = '\0';
        for (std::uint8_t& b : x.state) b = r.u8();
        return x;
    }
};

static_assert(4 + 2 + 2 + 2 + 2 + 4 + 8 + 8 + 4 + 4 + 8 + 8 + 4 + 4 + 8 + record_argument_size + inline_state_size ==
                  record_size,
              "lowbit::mpi: record layout");

inline std::string hex(std::uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "0x%08llx", static_cast<unsigned long long>(v));
    return buf;
}

inline std::string dec(std::uint64_t v) { return std::to_string(v); }

constexpr const char* kind_name(std::uint16_t k) noexcept {
    switch (k) {
        case 1: return "minmax";
        case 2: return "moving_average_minmax";
        case 3: return "per_channel_minmax";
        case 4: return "per_channel_moving_average_minmax";
        case 5: return "histogram";
        case 6: return "percentile";
        case 7: return "mse";
        case 8: return "entropy";
        case 9: return "fixed_qparams";
        default: return "unknown";
    }
}

/// "argument 'name' = <v_r> on rank r of p differs from rank 0's <v_0> in fn: expected".
inline status mismatch(const char* argument, const char* expected, int r, int p, std::uint16_t op,
                       const std::string& vr, const std::string& v0) {
    return fail(errc::invalid_argument, argument, r, expected,
                std::string("lowbit: invalid argument: argument '") + argument + "' = " + vr + " on rank " +
                    std::to_string(r) + " of " + std::to_string(p) + " differs from rank 0's " + v0 + " in " +
                    op_name(op) + ": " + expected);
}

/// Allgather of n bytes from every rank (n equal on all ranks).
inline status allgather_bytes(MPI_Comm comm, const comm_info& ci, const std::uint8_t* mine, std::size_t n,
                              std::vector<std::uint8_t>& all, traffic& t) {
    if (n > static_cast<std::size_t>(INT_MAX))
        return fail(
            errc::overflow, "message bytes", static_cast<double>(n), "must fit an MPI count (int)",
            "lowbit: overflow: argument 'message bytes' = " + dec(n) + ": an MPI message is limited to INT_MAX bytes");
    all.assign(n * usize(ci.size), 0);
    LOWBIT_DETAIL_MPI_CALL(MPI_Allgather, mine, static_cast<int>(n), MPI_BYTE, all.data(), static_cast<int>(n),
                           MPI_BYTE, comm);
    t.sent += n;
    t.received += n * usize(ci.size);
    return {};
}

/// Allgather of n floats from every rank (n equal on all ranks).
inline status allgather_floats(MPI_Comm comm, const comm_info& ci, const float* mine, std::size_t n,
                               std::vector<float>& all, traffic& t) {
    if (n > static_cast<std::size_t>(INT_MAX))
        return fail(errc::overflow, "message floats", static_cast<double>(n), "must fit an MPI count (int)",
                    "lowbit: overflow: argument 'message floats' = " + dec(n) +
                        ": an MPI message is limited to INT_MAX values");
    all.assign(n * usize(ci.size), 0.0f);
    LOWBIT_DETAIL_MPI_CALL(MPI_Allgather, mine, static_cast<int>(n), MPI_FLOAT, all.data(), static_cast<int>(n),
                           MPI_FLOAT, comm);
    t.sent += 4 * n;
    t.received += 4 * n * usize(ci.size);
    return {};
}

/// Exchanges the records, then checks them in the same order on every rank: protocol, function,
/// local failures, then kind, config tag, size and aux against rank 0's. On any problem every
/// rank fails with the same error, and no further collective is started.
inline status exchange_records(MPI_Comm comm, const comm_info& ci, record& mine, const status& local,
                               std::vector<record>& all, traffic& t) {
    if (!local.ok()) mine.set_failure(local);
    std::uint8_t buf[record_size];
    mine.write(buf);
    std::vector<std::uint8_t> bytes;
    LOWBIT_DETAIL_TRY(allgather_bytes(comm, ci, buf, record_size, bytes, t));
    all.clear();
    for (int r = 0; r < ci.size; ++r) all.push_back(record::read(bytes.data() + usize(r) * record_size));
    const int p = ci.size;
    const std::uint16_t op = mine.op;
    for (int r = 0; r < p; ++r) {
        const record& x = all[usize(r)];
        if (x.magic != record_magic || x.version != record_version)
            return mismatch("lowbit::mpi protocol version", "every rank must run the same lowbit version", r, p, op,
                            dec(x.version), dec(record_version));
    }
    for (int r = 1; r < p; ++r)
        if (all[usize(r)].op != all[0].op)
            return fail(errc::invalid_argument, "function", r,
                        "every rank must call the same lowbit::mpi function at the same time",
                        std::string("lowbit: invalid argument: rank ") + std::to_string(r) + " of " +
                            std::to_string(p) + " called " + op_name(all[usize(r)].op) + " while rank 0 called " +
                            op_name(all[0].op) +
                            ": every rank must call the same lowbit::mpi function at the same time");
    for (int r = 0; r < p; ++r) {
        const record& x = all[usize(r)];
        if (x.code == 0) continue;
        char v[64];
        std::snprintf(v, sizeof v, "%.9g", x.value);
        std::string msg = std::string("lowbit: ") + to_string(static_cast<errc>(x.code)) + ": rank " +
                          std::to_string(r) + " of " + std::to_string(p) + " could not take part in " + op_name(op) +
                          ": argument '" + x.argument + "' = " + v;
        if (r == ci.rank) msg += std::string(": ") + local.expected;  // the rank that failed knows why
        return fail(static_cast<errc>(x.code), "rank (local failure)", r,
                    "a rank failed before the exchange (its own error names the argument)", msg);
    }
    for (int r = 1; r < p; ++r) {
        const record& x = all[usize(r)];
        const record& z = all[0];
        if (op == static_cast<std::uint16_t>(op_code::allreduce_observer)) {
            if (x.kind != z.kind)
                return mismatch("observer kind", "every rank must pass an observer of the same type", r, p, op,
                                kind_name(x.kind), kind_name(z.kind));
            if (x.config != z.config)
                return mismatch("observer.config()",
                                "every rank's observer must have the same configuration (scheme, quant range, eps, "
                                "granularity, channels, bins, mode, averaging constant, method options)",
                                r, p, op, hex(x.config), hex(z.config));
            if (x.size != z.size)
                return mismatch("observer.state_size()", "every rank's observer must have the same state size", r, p,
                                op, dec(x.size), dec(z.size));
        } else if (op == static_cast<std::uint16_t>(op_code::allreduce_floats)) {
            if (x.config != z.config)
                return mismatch("reduction", "every rank must ask for the same reduction (mean or sum)", r, p, op,
                                dec(x.config), dec(z.config));
            if (x.size != z.size)
                return mismatch("values.size()", "every rank must reduce the same number of values", r, p, op,
                                dec(x.size), dec(z.size));
        } else {
            if (x.config != z.config)
                return mismatch("registered modules (hash)",
                                "every rank must register the same quantizers, fake_quantize modules and gradient "
                                "buffers (types, configurations, sizes) in the same order, and the same reduction",
                                r, p, op, hex(x.config), hex(z.config));
            if (x.size != z.size || x.aux != z.aux)
                return mismatch("registered sizes (range bytes, gradient floats)",
                                "every rank must register buffers of the same sizes", r, p, op,
                                dec(x.size) + ", " + dec(x.aux), dec(z.size) + ", " + dec(z.aux));
        }
    }
    return {};
}

/// The record of an observer, from its save() bytes (which also validates it locally).
template <class Observer>
status describe_observer(const Observer& obs, record& mine, std::vector<std::uint8_t>& state) {
    mine.op = static_cast<std::uint16_t>(op_code::allreduce_observer);
    mine.kind = static_cast<std::uint16_t>(Observer::kind);
    mine.config = obs.config();
    mine.size = obs.state_size();
    return capture([&]() -> status {
        state.assign(obs.state_size(), 0);
        LOWBIT_DETAIL_TRY(obs.save(span<std::uint8_t>(state.data(), state.size())));
        const observer_stats& s = obs.stats();
        mine.min = s.min;
        mine.max = s.max;
        mine.count = s.count;
        mine.batches = s.batches;
        if (state.size() <= inline_state_size) std::memcpy(mine.state, state.data(), state.size());
        return {};
    });
}

/// Rank-order union of the records' statistics; count / batches sums checked for overflow.
inline status union_stats(const std::vector<record>& all, std::uint16_t op, observer_stats& out) {
    out = observer_stats{};
    for (const record& x : all) {
        if (x.count > std::numeric_limits<std::uint64_t>::max() - out.count ||
            x.batches > std::numeric_limits<std::uint64_t>::max() - out.batches)
            return fail(errc::overflow, "count", static_cast<double>(x.count), "the merged count overflows uint64",
                        std::string("lowbit: overflow: the ranks' element counts overflow uint64 in ") + op_name(op));
        out.min = x.min < out.min ? x.min : out.min;
        out.max = x.max > out.max ? x.max : out.max;
        out.count += x.count;
        out.batches += x.batches;
    }
    return {};
}

inline std::size_t nonempty_ranks(const std::vector<record>& all) {
    std::size_t n = 0;
    for (const record& x : all) n += (x.batches != 0 || x.count != 0) ? 1 : 0;
    return n;
}

/// +0.0 for a zero (observe() stores zeros as +0.0; MPI_MAX may return either zero).
inline float canonical_zero(float v) noexcept { return v == 0.0f ? 0.0f : v; }

// ---- the exchange paths --------------------------------------------------------------------------

enum class path { generic, per_channel_minmax, per_channel_moving, exact_histogram_sum };

template <class O>
struct observer_path : std::integral_constant<path, path::generic> {};
template <class S>
struct observer_path<::lowbit::detail::per_channel_range_observer<S, false>>
    : std::integral_constant<path, path::per_channel_minmax> {};
template <class S>
struct observer_path<::lowbit::detail::per_channel_range_observer<S, true>>
    : std::integral_constant<path, path::per_channel_moving> {};
template <class S, std::size_t B, class M>
struct observer_path<::lowbit::detail::histogram_calibration_observer<S, B, M>>
    : std::integral_constant<path, path::exact_histogram_sum> {};

/// Observers whose merge() is exact (the union of what both observed).
template <class O>
struct exact_merge : std::false_type {};
template <class S>
struct exact_merge<::lowbit::detail::range_observer<S, false>> : std::true_type {};

template <class S>
struct exact_merge<fixed_qparams_observer<S>> : std::true_type {};

/// Replaces obs's state with `bytes` (a state this adapter built or another observer saved).
template <class Observer>
status load_into(Observer& obs, const std::vector<std::uint8_t>& bytes) {
    return obs.load(span<const std::uint8_t>(bytes.data(), bytes.size()));
}

// generic: gather the save() bytes (inline in the records when small), merge in rank order.
template <class Observer>
result<exchange_report> allreduce_generic(MPI_Comm comm, const comm_info& ci, Observer& obs) {
    record mine;
    std::vector<std::uint8_t> state;
    const status local = describe_observer(obs, mine, state);
    std::vector<record> all;
    traffic t;
    LOWBIT_DETAIL_TRY(exchange_records(comm, ci, mine, local, all, t));
    const std::size_t S = static_cast<std::size_t>(all[0].size);
    std::vector<std::uint8_t> states;
    exchange_report rep;
    if (S <= inline_state_size) {
        states.resize(S * usize(ci.size));
        for (std::size_t r = 0; r < all.size(); ++r) std::memcpy(states.data() + r * S, all[r].state, S);
        rep.method = "records (state inline) + merge() in rank order";
    } else {
        LOWBIT_DETAIL_TRY(allgather_bytes(comm, ci, state.data(), S, states, t));
        rep.method = "allgather of save() bytes + merge() in rank order";
    }
    // Everything below runs on every rank on the same bytes: an error here is everyone's.
    std::unique_ptr<Observer> acc(new Observer(obs));
    std::unique_ptr<Observer> one(new Observer(obs));
    acc->reset();
    for (std::size_t r = 0; r < all.size(); ++r) {
        if (all[r].batches == 0 && all[r].count == 0) continue;
        LOWBIT_DETAIL_TRY(one->load(span<const std::uint8_t>(states.data() + r * S, S)));
        LOWBIT_DETAIL_TRY(acc->merge(*one));
    }
    std::vector<std::uint8_t> out(S);
    LOWBIT_DETAIL_TRY(acc->save(span<std::uint8_t>(out.data(), out.size())));
    LOWBIT_DETAIL_TRY(load_into(obs, out));
    rep.ranks = usize(ci.size);
    rep.bytes_sent = t.sent;
    rep.bytes_received = t.received;
    rep.exact = exact_merge<Observer>::value || nonempty_ranks(all) <= 1;
    return rep;
}

/// Reads a per-channel range observer's save() bytes: channels, stats and the 2C running values.
inline void read_per_channel_state(const std::vector<std::uint8_t>& state, std::size_t C, float* values) {
    state_reader r{span<const std::uint8_t>(state.data() + state_header_size, state.size() - state_header_size)};
    (void)r.u64();  // channels
    (void)r.f32();  // min
    (void)r.f32();  // max
    (void)r.u64();  // count
    (void)r.u64();  // batches
    for (std::size_t i = 0; i < 2 * C; ++i) values[i] = r.f32();
}

/// Writes a per-channel range observer's state (per_channel_minmax.hpp's save() layout) and loads it.
template <class Observer>
status load_per_channel(Observer& obs, const observer_stats& s, const float* values) {
    const std::size_t C = obs.channels();
    std::vector<std::uint8_t> out(obs.state_size());
    LOWBIT_DETAIL_TRY(save_state(static_cast<std::uint16_t>(Observer::kind), obs.config(),
                                 span<std::uint8_t>(out.data(), out.size()), [&](state_writer& w) {
                                     w.u64(C);
                                     w.f32(s.min);
                                     w.f32(s.max);
                                     w.u64(s.count);
                                     w.u64(s.batches);
                                     for (std::size_t i = 0; i < 2 * C; ++i) w.f32(values[i]);
                                 }));
    return load_into(obs, out);
}

// per-channel MinMax: MPI_MAX of (-mins, maxs); exact.
template <class Observer>
result<exchange_report> allreduce_per_channel_minmax(MPI_Comm comm, const comm_info& ci, Observer& obs) {
    record mine;
    std::vector<std::uint8_t> state;
    const status local = describe_observer(obs, mine, state);
    mine.aux = obs.channels();
    std::vector<record> all;
    traffic t;
    LOWBIT_DETAIL_TRY(exchange_records(comm, ci, mine, local, all, t));
    const std::size_t C = obs.channels();
    if (2 * C > static_cast<std::size_t>(INT_MAX))
        return fail(errc::overflow, "channels", static_cast<double>(C), "2 * channels must fit an MPI count (int)",
                    "lowbit: overflow: argument 'channels' = " + dec(C) + ": 2 * channels must fit an MPI count");
    std::vector<float> v(2 * C);
    read_per_channel_state(state, C, v.data());
    for (std::size_t c = 0; c < C; ++c) v[c] = -v[c];  // exact; min(a, b) = -max(-a, -b)
    LOWBIT_DETAIL_MPI_CALL(MPI_Allreduce, MPI_IN_PLACE, v.data(), static_cast<int>(2 * C), MPI_FLOAT, MPI_MAX, comm);
    t.sent += 8 * C;
    t.received += 8 * C;
    for (std::size_t c = 0; c < C; ++c) v[c] = canonical_zero(-v[c]);
    for (std::size_t c = C; c < 2 * C; ++c) v[c] = canonical_zero(v[c]);
    observer_stats s;
    LOWBIT_DETAIL_TRY(union_stats(all, mine.op, s));
    LOWBIT_DETAIL_TRY(load_per_channel(obs, s, v.data()));
    exchange_report rep;
    rep.method = "records + MPI_MAX allreduce of (-mins, maxs)";
    rep.ranks = usize(ci.size);
    rep.bytes_sent = t.sent;
    rep.bytes_received = t.received;
    rep.exact = true;
    return rep;
}

// per-channel moving average: allgather of the 2C running values, merge()'s batch-weighted mean
// in rank order (per_channel_minmax.hpp's formula, operation for operation).
template <class Observer>
result<exchange_report> allreduce_per_channel_moving(MPI_Comm comm, const comm_info& ci, Observer& obs) {
    record mine;
    std::vector<std::uint8_t> state;
    const status local = describe_observer(obs, mine, state);
    mine.aux = obs.channels();
    std::vector<record> all;
    traffic t;
    LOWBIT_DETAIL_TRY(exchange_records(comm, ci, mine, local, all, t));
    const std::size_t C = obs.channels();
    std::vector<float> v(2 * C);
    read_per_channel_state(state, C, v.data());
    std::vector<float> gathered;
    LOWBIT_DETAIL_TRY(allgather_floats(comm, ci, v.data(), 2 * C, gathered, t));
    std::vector<float> acc(2 * C), other(2 * C);
    observer_stats s;
    for (std::size_t i = 0; i < C; ++i) acc[i] = inf_f, acc[C + i] = -inf_f;
    for (std::size_t r = 0; r < all.size(); ++r) {
        const record& x = all[r];
        if (x.batches == 0) continue;  // merge() of an observer that saw nothing changes nothing
        std::memcpy(other.data(), gathered.data() + r * 2 * C, 8 * C);
        const bool mean = s.batches != 0;
        const double wa = static_cast<double>(s.batches), wb = static_cast<double>(x.batches);
        for (std::size_t i = 0; i < 2 * C; ++i) {
            const float a = acc[i], b = other[i];
            if (mean)
                acc[i] = static_cast<float>((a * wa + b * wb) / (wa + wb));
            else
                acc[i] = i < C ? (b < a ? b : a) : (b > a ? b : a);
        }
        s.min = x.min < s.min ? x.min : s.min;
        s.max = x.max > s.max ? x.max : s.max;
        s.count += x.count;
        s.batches += x.batches;
    }
    LOWBIT_DETAIL_TRY(load_per_channel(obs, s, acc.data()));
    exchange_report rep;
    rep.method = "records + allgather of the running ranges + merge() in rank order";
    rep.ranks = usize(ci.size);
    rep.bytes_sent = t.sent;
    rep.bytes_received = t.received;
    rep.exact = nonempty_ranks(all) <= 1;
    return rep;
}

// percentile / mse / entropy: every rank re-bins its exact_histogram to the largest exponent
// (bin width 2^e; bin j of exponent e goes to floor((j - B/2) / 2^(E - e)) + B/2, as the
// histogram's own merge), then one MPI_SUM of the uint64 counts. Exact: every value lands in bin
// floor(x / 2^E) whatever the split.
template <class Observer>
result<exchange_report> allreduce_exact_histogram(MPI_Comm comm, const comm_info& ci, Observer& obs) {
    using hist_t = typename Observer::histogram_type;
    constexpr std::size_t B = hist_t::bins;
    record mine;
    std::vector<std::uint8_t> state;
    const status local = describe_observer(obs, mine, state);
    mine.exponent = obs.histogram().exponent();
    std::vector<record> all;
    traffic t;
    LOWBIT_DETAIL_TRY(exchange_records(comm, ci, mine, local, all, t));
    observer_stats s;
    LOWBIT_DETAIL_TRY(union_stats(all, mine.op, s));
    exchange_report rep;
    rep.method = "records + MPI_SUM allreduce of uint64 counts at a common exponent";
    rep.ranks = usize(ci.size);
    rep.exact = true;
    if (s.count == 0) {  // nobody observed anything: every state is the empty one already
        rep.bytes_sent = t.sent;
        rep.bytes_received = t.received;
        return rep;
    }
    int E = hist_t::min_exponent;
    for (const record& x : all)
        if (x.count != 0 && x.exponent > E) E = x.exponent;
    std::vector<std::uint64_t> counts(B, 0);
    const hist_t& h = obs.histogram();
    if (!h.empty()) {
        const int d = E - h.exponent();
        const span<const std::uint64_t> c = h.counts();
        const auto half = static_cast<std::int64_t>(hist_t::half);
        for (std::size_t j = 0; j < B; ++j) {
            if (c[j] == 0) continue;
            const std::int64_t rel = static_cast<std::int64_t>(j) - half;
            counts[static_cast<std::size_t>(calibration::detail::floor_shift(rel, d) + half)] += c[j];
        }
    }
    LOWBIT_DETAIL_MPI_CALL(MPI_Allreduce, MPI_IN_PLACE, counts.data(), static_cast<int>(B), MPI_UINT64_T, MPI_SUM,
                           comm);
    t.sent += 8 * B;
    t.received += 8 * B;
    std::vector<std::uint8_t> out(obs.state_size());
    LOWBIT_DETAIL_TRY(save_state(static_cast<std::uint16_t>(Observer::kind), obs.config(),
                                 span<std::uint8_t>(out.data(), out.size()), [&](state_writer& w) {
                                     w.i32(E);  // exact_histogram::write's layout
                                     w.f32(s.min);
                                     w.f32(s.max);
                                     w.u64(s.count);
                                     w.u64(s.batches);
                                     for (std::uint64_t c : counts) w.u64(c);
                                 }));
    LOWBIT_DETAIL_TRY(load_into(obs, out));  // load() checks the exponent, counts and range
    rep.bytes_sent = t.sent;
    rep.bytes_received = t.received;
    return rep;
}

}  // namespace detail

/// Makes `obs` on every rank of `comm` the combination of all ranks' observers (file comment:
/// exact for min/max, per-channel min/max and the exact-histogram observers; merge() in rank
/// order for the others). A collective: every rank calls it with an observer of the same type
/// and configuration. Returns what was exchanged. Errors, on EVERY rank and with no rank left
/// waiting: a rank's observer differs in kind, config() tag or state size from rank 0's (named
/// with both values); a rank could not save its state (e.g. a per-channel state buffer smaller
/// than 2 * channels); MPI not initialised, comm null or an intercommunicator; a failed MPI call
/// (named; needs MPI_ERRORS_RETURN); count overflow. On error the observer is unchanged.
template <class Observer>
result<exchange_report> allreduce(MPI_Comm comm, Observer& obs) {
    detail::comm_info ci;
    LOWBIT_DETAIL_TRY(detail::check_comm(comm, ci));
    constexpr detail::path p = detail::observer_path<Observer>::value;
    if constexpr (p == detail::path::per_channel_minmax) return detail::allreduce_per_channel_minmax(comm, ci, obs);
    else if constexpr (p == detail::path::per_channel_moving)
        return detail::allreduce_per_channel_moving(comm, ci, obs);
    else if constexpr (p == detail::path::exact_histogram_sum) return detail::allreduce_exact_histogram(comm, ci, obs);
    else return detail::allreduce_generic(comm, ci, obs);
}

namespace detail {

/// values[i] = f32(op(values[i] of every rank)), the double sum in rank order: a reduce-scatter
/// (MPI_Alltoallv; rank k reduces slice k, n / p values rounded down or up) and an MPI_Allgatherv.
/// The sum starts from rank 0's value (a -0.0 stays -0.0 on one rank).
inline status reduce_floats(MPI_Comm comm, const comm_info& ci, float* values, std::size_t n, gradient_reduction op,
                            traffic& t) {
    if (n == 0) return {};
    if (n > static_cast<std::size_t>(INT_MAX))
        return fail(errc::overflow, "values.size()", static_cast<double>(n), "must fit an MPI count (int)",
                    "lowbit: overflow: argument 'values.size()' = " + dec(n) + ": must fit an MPI count (int)");
    const std::size_t p = usize(ci.size), me = usize(ci.rank);
    std::vector<int> counts(p), displs(p), rcounts(p), rdispls(p);
    for (std::size_t k = 0; k < p; ++k) {
        const std::size_t c = n / p + (k < n % p ? 1 : 0);
        const std::size_t b = k * (n / p) + (k < n % p ? k : n % p);
        counts[k] = static_cast<int>(c);
        displs[k] = static_cast<int>(b);
    }
    const std::size_t mine = usize(counts[me]);
    for (std::size_t k = 0; k < p; ++k) {
        rcounts[k] = static_cast<int>(mine);
        rdispls[k] = static_cast<int>(k * mine);
    }
    std::vector<float> slices(p * mine + 1), reduced(mine + 1);
    LOWBIT_DETAIL_MPI_CALL(MPI_Alltoallv, values, counts.data(), displs.data(), MPI_FLOAT, slices.data(),
                           rcounts.data(), rdispls.data(), MPI_FLOAT, comm);
    for (std::size_t i = 0; i < mine; ++i) {
        double s = static_cast<double>(slices[i]);
        for (std::size_t k = 1; k < p; ++k) s += static_cast<double>(slices[k * mine + i]);
        reduced[i] = static_cast<float>(op == gradient_reduction::mean ? s / static_cast<double>(p) : s);
    }
    LOWBIT_DETAIL_MPI_CALL(MPI_Allgatherv, reduced.data(), static_cast<int>(mine), MPI_FLOAT, values, counts.data(),
                           displs.data(), MPI_FLOAT, comm);
    t.sent += 4 * (n + mine);
    t.received += 4 * (p * mine + n);
    return {};
}

}  // namespace detail

/// values[i] on every rank = f32(mean or sum over the ranks of values[i]), summed in double in
/// rank order (the same bits on every rank and with every MPI library; file comment for the
/// cost). A collective. Errors on every rank: sizes or reductions differ between ranks; MPI
/// errors; more than INT_MAX values. On error values are unchanged.
inline result<exchange_report> allreduce_floats(MPI_Comm comm, span<float> values,
                                                gradient_reduction op = gradient_reduction::mean) {
    detail::comm_info ci;
    LOWBIT_DETAIL_TRY(detail::check_comm(comm, ci));
    detail::record mine;
    mine.op = static_cast<std::uint16_t>(detail::op_code::allreduce_floats);
    mine.config = static_cast<std::uint32_t>(op);
    mine.size = values.size();
    std::vector<detail::record> all;
    detail::traffic t;
    LOWBIT_DETAIL_TRY(detail::exchange_records(comm, ci, mine, status{}, all, t));
    LOWBIT_DETAIL_TRY(detail::reduce_floats(comm, ci, values.data(), values.size(), op, t));
    exchange_report rep;
    rep.method = op == gradient_reduction::mean ? "reduce-scatter + allgather, mean in rank order"
                                                : "reduce-scatter + allgather, sum in rank order";
    rep.ranks = detail::usize(ci.size);
    rep.bytes_sent = t.sent;
    rep.bytes_received = t.received;
    return rep;
}

namespace detail {

/// The running range of one fake_quantize module's observer, as qat_sync exchanges it.
struct range_state {
    observer_stats stats;
    std::vector<float> mins, maxs;  // channels() entries each (1 per tensor)
};

class range_module {
public:
    virtual ~range_module() = default;
    virtual std::uint32_t tag() const noexcept = 0;
    virtual std::size_t channels() const noexcept = 0;
    virtual bool moving() const noexcept = 0;
    virtual status read(range_state& out) const = 0;
    virtual status write(const range_state& in) = 0;
    std::uint64_t base_batches = 0;  ///< the observer's batches at the last step
    std::uint64_t base_count = 0;
};

template <class Scheme, class Observer>
class fq_range_module final : public range_module {
    using module_type = fake_quantize<Scheme, Observer>;
    static constexpr bool per_channel = module_type::per_channel;
    static constexpr bool is_moving = Observer::kind == observer_kind::moving_average_minmax ||
                                      Observer::kind == observer_kind::per_channel_moving_average_minmax;
    static_assert(Observer::kind == observer_kind::minmax || Observer::kind == observer_kind::moving_average_minmax ||
                      Observer::kind == observer_kind::per_channel_minmax ||
                      Observer::kind == observer_kind::per_channel_moving_average_minmax,
                  "lowbit::mpi::qat_sync: fake_quantize modules with min/max or moving-average observers only "
                  "(synchronise other observers with lowbit::mpi::allreduce)");

public:
    explicit fq_range_module(module_type& fq) : m_fq(&fq) {
        base_batches = fq.observer().stats().batches;
        base_count = fq.observer().stats().count;
    }
    std::uint32_t tag() const noexcept override {
        config_hash h;
        h.add(static_cast<std::uint64_t>(Observer::kind)).add(m_fq->observer().config()).add(channels());
        return h.value();
    }
    std::size_t channels() const noexcept override {
        if constexpr (per_channel) return m_fq->observer().channels();
        else return 1;
    }
    bool moving() const noexcept override { return is_moving; }

    status read(range_state& out) const override {
        const Observer& obs = m_fq->observer();
        out.stats = obs.stats();
        const std::size_t C = channels();
        out.mins.assign(C, inf_f);
        out.maxs.assign(C, -inf_f);
        if constexpr (per_channel) {
            LOWBIT_DETAIL_CHECK(m_fq->qparams().scales.size() == C, errc::size_mismatch, "fake_quantize scales.size()",
                                m_fq->qparams().scales.size(),
                                "the module's qparams buffers must hold channels() entries");
            std::vector<std::uint8_t> state(obs.state_size());
            LOWBIT_DETAIL_TRY(obs.save(span<std::uint8_t>(state.data(), state.size())));  // checks the state buffer
            std::vector<float> v(2 * C);
            read_per_channel_state(state, C, v.data());
            for (std::size_t c = 0; c < C; ++c) out.mins[c] = v[c], out.maxs[c] = v[C + c];
        } else {
            out.mins[0] = out.stats.min;
            out.maxs[0] = out.stats.max;
        }
        return {};
    }

    status write(const range_state& in) override {
        Observer& obs = m_fq->observer();
        if constexpr (per_channel) {
            const std::size_t C = channels();
            std::vector<float> v(2 * C);
            for (std::size_t c = 0; c < C; ++c) v[c] = in.mins[c], v[C + c] = in.maxs[c];
            LOWBIT_DETAIL_TRY(load_per_channel(obs, in.stats, v.data()));
        } else {
            std::vector<std::uint8_t> out(obs.state_size());
            LOWBIT_DETAIL_TRY(save_state(static_cast<std::uint16_t>(Observer::kind), obs.config(),
                                         span<std::uint8_t>(out.data(), out.size()), [&](state_writer& w) {
                                             w.f32(in.mins[0]);  // minmax.hpp's save() layout
                                             w.f32(in.maxs[0]);
                                             w.u64(in.stats.count);
                                             w.u64(in.stats.batches);
                                         }));
            LOWBIT_DETAIL_TRY(load_into(obs, out));
        }
        return m_fq->update_qparams();
    }

private:
    module_type* m_fq;
};

}  // namespace detail

/// Data-parallel QAT: one step() per training step averages the registered gradients and
/// synchronises the registered fake_quantize modules' running ranges (file comment for what is
/// exact and what it costs). Register the same things in the same order on every rank; the
/// registered objects must outlive the qat_sync (it keeps pointers). Not copyable.
class qat_sync {
public:
    explicit qat_sync(MPI_Comm comm, gradient_reduction op = gradient_reduction::mean) : m_comm(comm), m_op(op) {}
    qat_sync(const qat_sync&) = delete;
    qat_sync& operator=(const qat_sync&) = delete;
    qat_sync(qat_sync&&) = default;
    qat_sync& operator=(qat_sync&&) = default;
    ~qat_sync() = default;

    /// LSQ / LSQ+ per tensor: dscale, dzero_point and dlog_scale.
    template <class Scheme>
    qat_sync& add(lsq_quantizer<Scheme>& q) {
        m_grads.push_back({1, [p = &q](std::vector<span<float>>& out) {
                               out.push_back(span<float>(&p->dscale, 1));
                               out.push_back(span<float>(&p->dzero_point, 1));
                               out.push_back(span<float>(&p->dlog_scale, 1));
                           }});
        return *this;
    }
    /// LSQ per channel: dscales and dzero_points (the spans it holds at each step).
    template <class Scheme>
    qat_sync& add(lsq_channel_quantizer<Scheme>& q) {
        m_grads.push_back({2, [p = &q](std::vector<span<float>>& out) {
                               out.push_back(p->dscales);
                               out.push_back(p->dzero_points);
                           }});
        return *this;
    }
    /// PACT: dalpha.
    template <class Scheme>
    qat_sync& add(pact_quantizer<Scheme>& q) {
        m_grads.push_back({3, [p = &q](std::vector<span<float>>& out) { out.push_back(span<float>(&p->dalpha, 1)); }});
        return *this;
    }
    /// A fake_quantize module with a min/max or moving-average observer (per tensor or per
    /// channel): its running range. Its current observer state is the baseline of the first step
    /// (it must be the same on every rank, e.g. fresh modules).
    template <class Scheme, class Observer>
    qat_sync& add(fake_quantize<Scheme, Observer>& fq) {
        m_ranges.push_back(std::unique_ptr<detail::range_module>(new detail::fq_range_module<Scheme, Observer>(fq)));
        return *this;
    }
    /// Any other float gradient buffer (e.g. a layer's weight gradients), reduced in place.
    qat_sync& add_gradient(span<float> g) {
        m_grads.push_back({4, [g](std::vector<span<float>>& out) { out.push_back(g); }});
        return *this;
    }

    /// Takes the registered modules' current observer states as the baseline of the next step
    /// (after resetting or loading them identically on every rank). Local, no communication.
    void rebase() {
        for (auto& m : m_ranges) {
            detail::range_state s;
            const status st = detail::capture([&] { return m->read(s); });
            if (st.ok()) m->base_batches = s.stats.batches, m->base_count = s.stats.count;
        }
    }

    /// One data-parallel step (file comment). A collective. Errors, on every rank and before any
    /// gradient or range changes: the ranks registered different things (types, configurations,
    /// sizes, order) or a different reduction; a rank could not read a module (e.g. per-channel
    /// buffers too small); MPI errors. After the gradients are reduced, on every rank alike:
    /// a module whose baseline differs between ranks (not in sync at the last step) or whose
    /// observer went back (reset: call rebase()); overflowing counts.
    result<step_report> step() {
        detail::comm_info ci;
        LOWBIT_DETAIL_TRY(detail::check_comm(m_comm, ci));
        const std::size_t p = detail::usize(ci.size);
        std::vector<span<float>> grads;
        for (const grad_item& g : m_grads) g.collect(grads);
        std::size_t n = 0;
        config_hash reg;
        reg.add(static_cast<std::uint64_t>(m_op));
        for (const grad_item& g : m_grads) reg.add(g.type);
        for (const span<float>& g : grads) reg.add(g.size()), n += g.size();
        std::size_t range_bytes = 0;
        for (const auto& m : m_ranges) reg.add(m->tag()), range_bytes += entry_bytes(m->channels());

        // local: every module's range (a failure is reported to all ranks by the exchange)
        std::vector<std::uint8_t> payload(range_bytes, 0);
        const status local = detail::capture([&]() -> status {
            state_writer w{span<std::uint8_t>(payload.data(), payload.size())};
            detail::range_state s;
            for (const auto& m : m_ranges) {
                LOWBIT_DETAIL_TRY(m->read(s));
                w.u64(m->base_batches);
                w.u64(m->base_count);
                w.u64(s.stats.batches);
                w.u64(s.stats.count);
                w.f32(s.stats.min);
                w.f32(s.stats.max);
                for (float v : s.mins) w.f32(v);
                for (float v : s.maxs) w.f32(v);
            }
            return {};
        });
        detail::record mine;
        mine.op = static_cast<std::uint16_t>(detail::op_code::qat_step);
        mine.config = reg.value();
        mine.size = range_bytes;
        mine.aux = n;
        std::vector<detail::record> all;
        detail::traffic t;
        LOWBIT_DETAIL_TRY(detail::exchange_records(m_comm, ci, mine, local, all, t));

        std::vector<std::uint8_t> ranges;
        if (range_bytes > 0)
            LOWBIT_DETAIL_TRY(detail::allgather_bytes(m_comm, ci, payload.data(), range_bytes, ranges, t));
        if (n > 0) {
            std::vector<float> packed;
            packed.reserve(n);
            for (const span<float>& g : grads) packed.insert(packed.end(), g.begin(), g.end());
            LOWBIT_DETAIL_TRY(detail::reduce_floats(m_comm, ci, packed.data(), n, m_op, t));
            std::size_t at = 0;
            for (const span<float>& g : grads) {
                std::memcpy(g.data(), packed.data() + at, g.size() * sizeof(float));
                at += g.size();
            }
        }
        step_report rep;
        rep.ranks = p;
        rep.gradient_values = n;
        std::size_t offset = 0;
        for (std::size_t i = 0; i < m_ranges.size(); ++i) {
            detail::range_module& m = *m_ranges[i];
            const std::size_t C = m.channels(), bytes = entry_bytes(C);
            bool observed = false, exact = true;
            LOWBIT_DETAIL_TRY(combine(m, i, ranges, range_bytes, offset, p, observed, exact));
            rep.ranges_updated += observed ? 1 : 0;
            rep.ranges_exact = rep.ranges_exact && exact;
            offset += bytes;
        }
        rep.bytes_sent = t.sent;
        rep.bytes_received = t.received;
        return rep;
    }

    /// Registered gradient buffers (in floats, at this moment) and fake_quantize modules.
    std::size_t gradient_values() const {
        std::vector<span<float>> grads;
        for (const grad_item& g : m_grads) g.collect(grads);
        std::size_t n = 0;
        for (const span<float>& g : grads) n += g.size();
        return n;
    }
    std::size_t range_modules() const noexcept { return m_ranges.size(); }

private:
    struct grad_item {
        std::uint32_t type;
        std::function<void(std::vector<span<float>>&)> collect;
    };

    static std::size_t entry_bytes(std::size_t channels) noexcept { return 40 + 8 * channels; }

    // Rank-order combination of module i's entries (identical input on every rank).
    static status combine(detail::range_module& m, std::size_t index, const std::vector<std::uint8_t>& ranges,
                          std::size_t stride, std::size_t offset, std::size_t p, bool& observed, bool& exact) {
        const std::size_t C = m.channels();
        detail::range_state out;
        out.mins.assign(C, detail::inf_f);
        out.maxs.assign(C, -detail::inf_f);
        std::uint64_t base_b = 0, base_c = 0, extra_count = 0, most_batches = 0;
        observed = false;
        exact = true;
        for (std::size_t r = 0; r < p; ++r) {
            state_reader rd{span<const std::uint8_t>(ranges.data() + r * stride + offset, 40 + 8 * C)};
            const std::uint64_t bb = rd.u64(), bc = rd.u64(), b = rd.u64(), c = rd.u64();
            const float smin = rd.f32(), smax = rd.f32();
            if (r == 0) base_b = bb, base_c = bc;
            if (bb != base_b || bc != base_c)
                return detail::fail(errc::invalid_argument, "fake_quantize module (index)", static_cast<double>(index),
                                    "was not in the same state on every rank at the last step (register identical "
                                    "modules; after resetting or loading them, call rebase())",
                                    "lowbit: invalid argument: fake_quantize module " + std::to_string(index) +
                                        " registered with lowbit::mpi::qat_sync had " + std::to_string(bb) +
                                        " batches on rank " + std::to_string(r) + " at the last step but " +
                                        std::to_string(base_b) +
                                        " on rank 0: the modules must start in the same state on every rank");
            if (b < bb || c < bc)
                return detail::fail(errc::invalid_argument, "fake_quantize module (index)", static_cast<double>(index),
                                    "its observer went back since the last step (reset? call rebase() on every rank)",
                                    "lowbit: invalid argument: the observer of fake_quantize module " +
                                        std::to_string(index) + " has fewer batches on rank " + std::to_string(r) +
                                        " than at the last lowbit::mpi::qat_sync::step (reset or reloaded? then call "
                                        "rebase() on every rank)");
            if (b == bb) continue;  // this rank did not observe since the last step
            observed = true;
            if (m.moving() && b - bb > 1) exact = false;
            if (c - bc > std::numeric_limits<std::uint64_t>::max() - extra_count)
                return detail::fail(errc::overflow, "count", static_cast<double>(c), "overflows uint64",
                                    "lowbit: overflow: element counts overflow uint64 in lowbit::mpi::qat_sync::step");
            extra_count += c - bc;
            most_batches = b - bb > most_batches ? b - bb : most_batches;
            out.stats.min = smin < out.stats.min ? smin : out.stats.min;
            out.stats.max = smax > out.stats.max ? smax : out.stats.max;
            for (std::size_t k = 0; k < C; ++k) {
                const float lo = rd.f32();
                out.mins[k] = lo < out.mins[k] ? lo : out.mins[k];
            }
            for (std::size_t k = 0; k < C; ++k) {
                const float hi = rd.f32();
                out.maxs[k] = hi > out.maxs[k] ? hi : out.maxs[k];
            }
        }
        if (!observed) return {};
        if (extra_count > std::numeric_limits<std::uint64_t>::max() - base_c)
            return detail::fail(errc::overflow, "count", static_cast<double>(base_c), "overflows uint64",
                                "lowbit: overflow: element counts overflow uint64 in lowbit::mpi::qat_sync::step");
        out.stats.count = base_c + extra_count;
        out.stats.batches = base_b + most_batches;
        LOWBIT_DETAIL_TRY(m.write(out));
        m.base_batches = out.stats.batches;
        m.base_count = out.stats.count;
        return {};
    }

    MPI_Comm m_comm;
    gradient_reduction m_op;
    std::vector<grad_item> m_grads;
    std::vector<std::unique_ptr<detail::range_module>> m_ranges;
};

}  // namespace mpi
}  // namespace lowbit

#undef LOWBIT_DETAIL_MPI_CALL

#endif  // <mpi.h> found
#undef LOWBIT_DETAIL_MPI_HEADER

#endif  // LOWBIT_MPI_HPP
