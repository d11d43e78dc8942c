namespace StreamSpace.Api.Features.Groups;

public static class GroupAnswers
{
    /// <summary>200 with the group as it now is, or the refusal's problem details.</summary>
    public static async Task<IResult> OfAsync(Task<GroupResult> change)
    {
        var result = await change;
        return result.Refusal() ?? TypedResults.Ok(result.Group);
    }
}
