//! Field conditions such as `res.statusCode >= 500`: parsed once, evaluated per event.
#[derive(Debug, Clone, PartialEq)]
pub struct Predicate {
    pub text: String,
}
