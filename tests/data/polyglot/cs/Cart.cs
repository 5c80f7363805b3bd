using System;
using System.Collections.Generic;
using System.Linq;

namespace Example.Shop
{
    public record Item(string Sku, int Price, int Quantity = 1);

    public enum Status { Open, CheckedOut }

    /// <summary>A customer's cart of items, with at most one discount.</summary>
    [Serializable]
    public class Cart
    {
        public const int MaxQuantity = 99;
        private const decimal TaxRate = 0.2m;

        private readonly Dictionary<string, Item> _items = new();

        public Cart(string customer)
        {
            Customer = customer;
        }

        public string Customer { get; }

        public Status Status { get; private set; } = Status.Open;

        public int Discount { get; private set; }

        /// <summary>Adding an item twice raises its quantity.</summary>
        public void Add(Item item)
        {
            EnsureOpen();
            var quantity = item.Quantity + (_items.TryGetValue(item.Sku, out var current) ? current.Quantity : 0);
            if (quantity > MaxQuantity)
            {
                throw new ArgumentOutOfRangeException(nameof(item), $"at most {MaxQuantity} per item");
            }
            _items[item.Sku] = item with { Quantity = quantity };
        }

        public bool Remove(string sku)
        {
            EnsureOpen();
            return _items.Remove(sku);
        }

        public void Apply(int percent)
        {
            if (Discount != 0)
            {
                throw new InvalidOperationException("one discount per cart");
            }
            Discount = percent;
        }

        public int Subtotal() => _items.Values.Sum(item => item.Price * item.Quantity);

        public int Total()
        {
            var taxable = Subtotal() - Subtotal() * Discount / 100;
            return taxable + (int)Math.Ceiling(taxable * TaxRate);
        }

        [Obsolete("Use Total() and format it yourself.")]
        public string TotalText() => $"{Total() / 100m:0.00} EUR";

        public IReadOnlyList<string> Lines()
        {
            return _items.Values
                .OrderBy(item => item.Sku)
                .Select(item => $"{item.Quantity} x {item.Sku}")
                .ToList();
        }

        public int Checkout()
        {
            EnsureOpen();
            if (_items.Count == 0)
            {
                throw new InvalidOperationException("the cart is empty");
            }
            Status = Status.CheckedOut;
            return Total();
        }

        private void EnsureOpen()
        {
            if (Status != Status.Open)
            {
                throw new InvalidOperationException($"cart of {Customer} is {Status}");
            }
        }
    }

    public static class CartExtensions
    {
        public static bool IsEmpty(this Cart cart) => cart.Lines().Count == 0;
    }
}
