//! Pure lag maths: LSN parsing and differences, reconciling the primary's and the standby's views. PURE.
