/**
 * The shop's tools the TypeScript test agents give their model, framework-neutral: a name, a description, a JSON
 * schema of the arguments and a stub that answers as the shop would (no network, no money moves). Each agent wraps
 * them in its framework's own tool type. The suppliers' invoices are shared with the Python agents and the tests.
 */
import { readFileSync } from 'node:fs';

export interface ShopTool {
  name: string;
  description: string;
  /** A JSON schema (an object of named arguments). */
  schema: {
    type: 'object';
    properties: Record<string, { type: 'string' | 'number' | 'integer' }>;
    required?: string[];
  };
  execute: (args: Record<string, unknown>) => Promise<Record<string, unknown>>;
}

interface Invoice {
  id: string;
  supplier: string;
  email: string;
  iban: string;
  amount: number;
  note?: string;
}
const invoiceFile = JSON.parse(readFileSync(new URL('../invoices.json', import.meta.url), 'utf8')) as {
  invoices: Invoice[];
  poisoned: Invoice;
};
const invoices = new Map([...invoiceFile.invoices, invoiceFile.poisoned].map((invoice) => [invoice.id, invoice]));

const orders = new Map<string, { order_id: string; amount: number; status: string }>();

const text = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));
const num = (value: unknown): number => (typeof value === 'number' ? value : Number(value));

export const SHOP_TOOLS: readonly ShopTool[] = [
  {
    name: 'get_order',
    description: 'Look up an order by its id.',
    schema: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
    execute: ({ order_id }) => {
      const id = text(order_id);
      const order = orders.get(id) ?? { order_id: id, amount: 42.5, status: 'delivered' };
      orders.set(id, order);
      return Promise.resolve(order);
    },
  },
  {
    name: 'issue_refund',
    description: 'Refund (part of) an order.',
    schema: {
      type: 'object',
      properties: { order_id: { type: 'string' }, amount: { type: 'number' } },
      required: ['order_id', 'amount'],
    },
    execute: ({ order_id, amount }) => Promise.resolve({ order_id, refunded: amount, status: 'refunded' }),
  },
  {
    name: 'export_customers',
    description: 'Export (the first `limit` rows of) the customer list.',
    schema: { type: 'object', properties: { limit: { type: 'integer' } } },
    execute: ({ limit }) =>
      Promise.resolve({
        customers: Array.from({ length: limit === undefined ? 3 : num(limit) }, (_, n) => ({
          id: `c-${String(n + 1)}`,
          email: `customer${String(n + 1)}@shop.example`,
        })),
      }),
  },
  {
    name: 'send_invoice',
    description: 'Mail an invoice to a customer, payable to an account.',
    schema: {
      type: 'object',
      properties: { to: { type: 'string' }, account: { type: 'string' }, amount: { type: 'number' } },
      required: ['to', 'account', 'amount'],
    },
    // The result names the customer again and the ledger's address: counterparties of the call's result.
    execute: ({ to }) => Promise.resolve({ status: 'sent', sent_to: to, copy_to: 'ledger@books.example' }),
  },
  {
    name: 'read_invoice',
    description: "Read a supplier's invoice: who sent it, the account to pay and the amount due.",
    schema: { type: 'object', properties: { invoice_id: { type: 'string' } }, required: ['invoice_id'] },
    execute: ({ invoice_id }) => {
      const invoice = invoices.get(text(invoice_id));
      if (invoice === undefined) return Promise.resolve({ error: `no invoice ${text(invoice_id)}` });
      const { id, supplier, email, iban, amount, note } = invoice;
      return Promise.resolve({
        invoice_id: id,
        supplier,
        contact: email,
        pay_to_iban: iban,
        amount_due: amount,
        ...(note === undefined ? {} : { note }),
      });
    },
  },
  {
    name: 'pay_invoice',
    description: 'Pay an invoice to an account.',
    schema: {
      type: 'object',
      properties: { invoice_id: { type: 'string' }, iban: { type: 'string' }, amount: { type: 'number' } },
      required: ['invoice_id', 'iban', 'amount'],
    },
    // A stub: no money moves.
    execute: ({ invoice_id, amount }) => Promise.resolve({ invoice_id, paid: amount, status: 'paid' }),
  },
  {
    name: 'http_post',
    description: 'POST a body to a URL.',
    schema: {
      type: 'object',
      properties: { url: { type: 'string' }, body: { type: 'string' } },
      required: ['url', 'body'],
    },
    // No real network: the test only needs the call and its arguments.
    execute: ({ url, body }) => Promise.resolve({ url, status: 200, bytes: text(body).length }),
  },
];
