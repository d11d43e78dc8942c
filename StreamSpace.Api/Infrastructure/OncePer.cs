namespace StreamSpace.Api.Infrastructure;

/// <summary>
/// Says yes to one caller at most once per <paramref name="interval"/>, without a timer: housekeeping (deleting expired
/// rows) rides on a statement the caller sends anyway, so an idle replica costs nothing.
/// </summary>
public sealed class OncePer(TimeSpan interval)
{
    private long next;

    public bool IsDue()
    {
        var now = Environment.TickCount64;
        var due = Interlocked.Read(ref next);
        return now >= due && Interlocked.CompareExchange(ref next, now + (long)interval.TotalMilliseconds, due) == due;
    }
}
