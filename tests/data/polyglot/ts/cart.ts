import { Injectable } from "@angular/core";
import type { Money } from "./money";

export const TAX_RATE = 0.2;

export interface Item {
  sku: string;
  price: Money;
  quantity: number;
}

export type Sku = Item["sku"];

export enum Status {
  Open = "open",
  CheckedOut = "checked-out",
}

export namespace Pricing {
  export function cents(amount: number): number {
    return Math.round(amount * 100);
  }

  export const euros = (cents: number): number => cents / 100;
}

/** A customer's cart; one per session. */
@Injectable({ providedIn: "root" })
export class Cart<T extends Item = Item> {
  private readonly items = new Map<Sku, T>();
  private status: Status = Status.Open;

  constructor(private readonly customer: string) {}

  add(item: T): void {
    this.ensureOpen();
    const current = this.items.get(item.sku);
    const quantity = item.quantity + (current?.quantity ?? 0);
    this.items.set(item.sku, { ...item, quantity });
  }

  remove(sku: Sku): boolean {
    this.ensureOpen();
    return this.items.delete(sku);
  }

  has(sku: Sku): boolean {
    return this.items.has(sku);
  }

  clear(): void {
    this.ensureOpen();
    this.items.clear();
  }

  skus(): Sku[] {
    return [...this.items.keys()].sort();
  }

  quantityOf(sku: Sku): number {
    const item = this.items.get(sku);
    return item ? item.quantity : 0;
  }

  toJSON(): { customer: string; items: T[] } {
    return { customer: this.customer, items: [...this.items.values()] };
  }

  get count(): number {
    let count = 0;
    for (const item of this.items.values()) {
      count += item.quantity;
    }
    return count;
  }

  get subtotal(): Money {
    let sum = 0;
    for (const item of this.items.values()) {
      sum += item.price * item.quantity;
    }
    return sum;
  }

  get total(): Money {
    return this.subtotal + Math.ceil(this.subtotal * TAX_RATE);
  }

  @Log()
  checkout(): Money {
    this.ensureOpen();
    if (this.items.size === 0) {
      throw new Error("the cart is empty");
    }
    this.status = Status.CheckedOut;
    return this.total;
  }

  lines(): string[] {
    return [...this.items.values()].map((item) => `${item.quantity} x ${item.sku}`);
  }

  private ensureOpen(): void {
    if (this.status !== Status.Open) {
      throw new Error(`cart of ${this.customer} is ${this.status}`);
    }
  }
}

function Log(): MethodDecorator {
  return (_target, key) => {
    console.debug(`called ${String(key)}`);
  };
}
