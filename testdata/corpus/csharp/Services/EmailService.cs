using System.Net;
using System.Net.Mail;
using Microsoft.Extensions.Options;
using SendGrid;
using SendGrid.Helpers.Mail;

namespace Acme.Orders.Services;

public sealed class EmailService
{
    private const string SendGridKey = "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";
    private readonly SmtpOptions _options;

    public EmailService(IOptions<SmtpOptions> options) => _options = options.Value;

    public async Task SendAsync(string to, string subject, string html)
    {
        var client = new SendGridClient(SendGridKey);
        var msg = MailHelper.CreateSingleEmail(new EmailAddress("orders@acme.example"), new EmailAddress(to), subject, null, html);
        await client.SendEmailAsync(msg);
    }

    public void SendViaRelay(string to, string subject, string body)
    {
        using var smtp = new SmtpClient("relay.acme.internal", 587)
        {
            EnableSsl = true,
            Credentials = new NetworkCredential("orders-relay", "Relay!Orders-4471-kX"),
        };
        smtp.Send(new MailMessage("orders@acme.example", to, subject, body));
    }

    public void SendWithConfiguredCredentials(string to, string subject, string body)
    {
        using var smtp = new SmtpClient(_options.Host, _options.Port)
        {
            Credentials = new NetworkCredential(_options.Username, _options.Password),
        };
        smtp.Send(new MailMessage(_options.From, to, subject, body));
    }
}
