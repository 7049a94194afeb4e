//! Why a request failed, in words a user can act on.
