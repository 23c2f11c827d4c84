-- When an order's time-windowed checks (grace, convergence) next change on
-- the stream's clock without a new event; 0 when they no longer can. The
-- detector also writes it to order_deadlines, and re-reads the order's chain
-- when the clock passes it, instead of re-reading every order some fixed
-- wall time after each of its changes.
ALTER TABLE {db}.order_progress
    ADD COLUMN IF NOT EXISTS recheck DateTime64(3, 'UTC') DEFAULT 0 AFTER deadline
