# frozen_string_literal: true

require "bigdecimal"
require_relative "item"

module Shop
  TAX_RATE = BigDecimal("0.2")

  class CartError < StandardError; end

  # A customer's cart of items, with at most one discount code.
  class Cart
    include Enumerable

    MAX_QUANTITY = 99

    attr_reader :customer, :discount

    def self.for(customer)
      new(customer)
    end

    def initialize(customer)
      @customer = customer
      @items = {}
      @discount = nil
    end

    # Adding an item twice raises its quantity.
    def add(item)
      current = @items[item.sku]
      quantity = item.quantity + (current ? current.quantity : 0)
      raise CartError, "at most #{MAX_QUANTITY} of #{item.sku}" if quantity > MAX_QUANTITY

      @items[item.sku] = item.with(quantity: quantity)
    end

    def remove(sku)
      @items.delete(sku) or raise CartError, "#{sku} is not in the cart"
    end

    def each(&block)
      @items.each_value(&block)
    end

    def apply(discount)
      raise CartError, "one discount per cart" if @discount

      @discount = discount
    end

    def subtotal
      sum { |item| item.price * item.quantity }
    end

    def taxable
      return subtotal unless @discount

      subtotal - (subtotal * @discount.percent / 100)
    end

    def total
      (taxable + (taxable * TAX_RATE)).ceil
    end

    def lines
      map { |item| "#{item.quantity} x #{item.sku}" }
    end

    def empty?
      @items.empty?
    end

    def include?(sku)
      @items.key?(sku)
    end

    def quantity_of(sku)
      @items.fetch(sku, nil)&.quantity || 0
    end

    def clear
      @items.clear
      @discount = nil
    end

    class << self
      def restore(data)
        cart = self.for(data.fetch(:customer))
        data.fetch(:items).each { |item| cart.add(item) }
        cart
      end
    end

    def to_s
      "Cart(#{customer}, #{count} items)"
    end
  end

  def self.checkout(cart)
    raise CartError, "the cart is empty" if cart.empty?

    cart.total
  end
end
