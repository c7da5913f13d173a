/// Processes training one model together (the ranks of an MPI job): each holds a copy of the model
/// and its optimizer, takes its slice of every batch, and the slices' gradients are summed over all
/// of them before every copy takes the same optimizer step.
public protocol ProcessGroup: AnyObject {
    /// This process's number, 0 ..< size.
    var rank: Int { get }
    var size: Int { get }
    /// Sums `values` element-wise over every process, in place; every process gets the same sums.
    func sumAll(_ values: inout [Float]) throws
}
