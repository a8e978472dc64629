-- An ERP-like sales schema for the change data capture tests: customers,
-- orders, shipments, invoices and payments, each with the updated_at column
-- an ERP keeps (set on every update by a trigger), in the column types ERPs
-- use: text ids, numeric money, dates for due dates, timestamptz for
-- instants, timestamp without time zone (UTC) for the row's own clock.
--
-- Run by tests/support/cdc.py as the superuser on a fresh database `erp`;
-- the replication user and the publication follow docs/ingest.md
-- ("Change data capture (Debezium)").

CREATE FUNCTION touch_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := clock_timestamp() AT TIME ZONE 'UTC';
  RETURN NEW;
END $$;

CREATE TABLE customers (
  customer_id   text PRIMARY KEY,
  name          text NOT NULL,
  tier          char(1) NOT NULL,
  region        text,
  sales_rep     text,
  credit_limit  numeric(16, 2),
  updated_at    timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')
);

CREATE TABLE orders (
  order_id       text PRIMARY KEY,
  customer_id    text NOT NULL REFERENCES customers,
  amount         numeric(16, 2) NOT NULL,
  currency       char(3) NOT NULL DEFAULT 'CNY',
  status         text NOT NULL DEFAULT 'open',   -- open | cancelled
  cancel_reason  text,
  ordered_at     timestamptz NOT NULL,
  updated_at     timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')
);

CREATE TABLE shipments (
  shipment_id   text PRIMARY KEY,
  order_id      text NOT NULL REFERENCES orders,
  customer_id   text NOT NULL REFERENCES customers,
  promised_at   timestamptz NOT NULL,
  eta           timestamptz,
  delivered_at  timestamptz,
  updated_at    timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')
);

CREATE TABLE invoices (
  invoice_id   text PRIMARY KEY,
  customer_id  text NOT NULL REFERENCES customers,
  amount       numeric(16, 2) NOT NULL,
  currency     char(3) NOT NULL DEFAULT 'CNY',
  issued_on    date NOT NULL,
  due_date     date NOT NULL,
  status       text NOT NULL DEFAULT 'open',    -- open | paid | written_off
  updated_at   timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')
);

CREATE TABLE payments (
  payment_id   text PRIMARY KEY,
  invoice_id   text NOT NULL REFERENCES invoices,
  customer_id  text NOT NULL REFERENCES customers,
  amount       numeric(16, 2) NOT NULL,
  received_at  timestamptz NOT NULL,
  updated_at   timestamp NOT NULL DEFAULT (clock_timestamp() AT TIME ZONE 'UTC')
);

CREATE TRIGGER customers_touch BEFORE UPDATE ON customers FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER orders_touch BEFORE UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER shipments_touch BEFORE UPDATE ON shipments FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER invoices_touch BEFORE UPDATE ON invoices FOR EACH ROW EXECUTE FUNCTION touch_updated_at();
CREATE TRIGGER payments_touch BEFORE UPDATE ON payments FOR EACH ROW EXECUTE FUNCTION touch_updated_at();

-- A delete's change event carries the whole old row only with REPLICA
-- IDENTITY FULL; with the default identity it carries the primary key alone
-- (docs/ingest.md). invoices and orders are FULL, as the docs recommend for
-- tables whose delete the mapping turns into an event; shipments keeps the
-- default, so the tests see both.
ALTER TABLE customers REPLICA IDENTITY FULL;
ALTER TABLE orders REPLICA IDENTITY FULL;
ALTER TABLE invoices REPLICA IDENTITY FULL;
ALTER TABLE payments REPLICA IDENTITY FULL;

-- The connector's own user: it may log in, replicate and read these tables,
-- nothing more. The publication is made here by the owner, so the
-- connector runs with publication.autocreate.mode=disabled.
CREATE ROLE riskwatch_cdc WITH LOGIN REPLICATION PASSWORD 'cdc-test-password';
GRANT USAGE ON SCHEMA public TO riskwatch_cdc;
GRANT SELECT ON customers, orders, shipments, invoices, payments TO riskwatch_cdc;
CREATE PUBLICATION riskwatch_cdc FOR TABLE customers, orders, shipments, invoices, payments;
