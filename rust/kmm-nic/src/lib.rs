//! NIC transmit ring model (see issue: the transmit path).
