class User < ApplicationRecord
  has_secure_password
  has_secure_token :api_token, length: 36
  has_secure_token :password_reset_token

  PASSWORD_MIN_LENGTH = 12
  TOKEN_TTL = 2.hours

  validates :email, presence: true, uniqueness: { case_sensitive: false }
  validates :password, length: { minimum: PASSWORD_MIN_LENGTH }, allow_nil: true

  encrypts :otp_secret
  normalizes :email, with: ->(e) { e.strip.downcase }

  def self.authenticate(email, password)
    find_by(email: email)&.authenticate(password)
  end

  def regenerate_password_reset!
    regenerate_password_reset_token
    update!(password_reset_sent_at: Time.current)
  end

  def token_expired?
    password_reset_sent_at.nil? || password_reset_sent_at < TOKEN_TTL.ago
  end
end
